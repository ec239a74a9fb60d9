-- People found by any part of their name however typed (case, accents, spacing aside), by the start
-- of their phone number, or by their whole ID number, across the sites, from indexes.
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE FUNCTION outpost_fold(t text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN lower(regexp_replace(public.unaccent('public.unaccent'::regdictionary, t), '\s+', ' ', 'g'));
CREATE INDEX doc_person_name ON doc USING gin (outpost_fold(value->>'full_name') gin_trgm_ops) WHERE kind = 'person';
CREATE INDEX doc_person_phone ON doc ((value->>'phone') text_pattern_ops) WHERE kind = 'person';
CREATE INDEX doc_person_id_number ON doc ((value->>'id_number')) WHERE kind = 'person';
