CREATE TABLE lease (
    site text COLLATE "C" PRIMARY KEY REFERENCES site,
    holder text NOT NULL,
    since timestamptz NOT NULL,
    until timestamptz NOT NULL
);
CREATE TABLE exchange_log (
    site text COLLATE "C" NOT NULL REFERENCES site,
    holder text NOT NULL,
    started timestamptz NOT NULL,
    ended timestamptz NOT NULL
);
CREATE INDEX exchange_log_site ON exchange_log (site, started);
ALTER TABLE site ADD COLUMN pulled_at timestamptz;
