CREATE TABLE site (
    site text COLLATE "C" PRIMARY KEY,
    last_seq bigint NOT NULL DEFAULT 0,
    actor bytea NOT NULL
);
CREATE TABLE doc (
    site text COLLATE "C" NOT NULL REFERENCES site,
    id text COLLATE "C" NOT NULL,
    kind text COLLATE "C" NOT NULL,
    seq bigint NOT NULL,
    doc bytea NOT NULL,
    value jsonb NOT NULL,
    PRIMARY KEY (site, id)
);
CREATE UNIQUE INDEX doc_log ON doc (site, seq);
CREATE INDEX doc_kind ON doc (site, kind, id);
CREATE TABLE entry (
    site text COLLATE "C" NOT NULL,
    name text COLLATE "C" NOT NULL,
    value text COLLATE "C" NOT NULL,
    id text COLLATE "C" NOT NULL,
    PRIMARY KEY (site, name, value, id),
    FOREIGN KEY (site, id) REFERENCES doc ON DELETE CASCADE
);
CREATE INDEX entry_doc ON entry (site, id);
CREATE TABLE local (
    site text COLLATE "C" NOT NULL REFERENCES site,
    key text COLLATE "C" NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (site, key)
);
