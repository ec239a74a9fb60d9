-- Each exchange of a server with a site, under the site's lease (a session advisory lock).
CREATE TABLE exchange_log (
    site text COLLATE "C" NOT NULL REFERENCES site,
    holder text NOT NULL,
    started timestamptz NOT NULL,
    ended timestamptz NOT NULL
);
CREATE INDEX exchange_log_site ON exchange_log (site, started);
ALTER TABLE site ADD COLUMN pulled_at timestamptz;
