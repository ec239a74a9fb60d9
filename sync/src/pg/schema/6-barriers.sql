-- The analysts' views are security barriers: a condition of an analyst's own (a cast that fails and
-- shows the value, a function of theirs) is applied only to the rows their district's filter let
-- through, never before it.
ALTER VIEW analytics.sites SET (security_barrier = true);
ALTER VIEW analytics.people SET (security_barrier = true);
ALTER VIEW analytics.declarations SET (security_barrier = true);
ALTER VIEW analytics.alerts SET (security_barrier = true);
ALTER VIEW analytics.samplings SET (security_barrier = true);
ALTER VIEW analytics.zone_reports SET (security_barrier = true);
