-- The province keeps the index entries it reads (`pg::KEPT_INDEXES`): a person's status, an
-- alert's state, a sampling's day. The others were a third of a document's bytes.
DELETE FROM entry WHERE name NOT IN ('person_status', 'alert_state', 'sample_day');
