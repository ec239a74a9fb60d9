-- Fewer bytes a document: records of a kind are listed by the primary key's range (`kind/` to
-- `kind0`), and a document's index entries are found from its stored projection when it is written.
DROP INDEX doc_kind;
DROP INDEX entry_doc;
