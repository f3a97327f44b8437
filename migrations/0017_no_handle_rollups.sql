-- Calls that named no handle (every segment the caller's inline content, no row in request_handles: a call naming a
-- session with no turns yet named one) are counted on rollup rows of their own, handle_id '-', as reconciliation now
-- writes them: the reconciled ones still stored, from their outcomes (a pruned call's figures are gone). Their write
-- premiums are not followed: none counted. Spans never hold these rows: nothing to make again.
INSERT INTO `rollups` (`tenant_id`, `handle_id`, `version`, `day`, `model`, `requests`, `referenced`, `req_referenced`, `opportunity`, `req_opportunity`, `reported_opportunity`, `req_reported_opportunity`, `predicted`, `req_predicted`, `captured`, `req_captured`, `bonus`, `req_bonus`, `unconfirmed`, `req_unconfirmed`, `unknown`, `req_unknown`, `cold`, `req_cold`, `drift`, `req_drift`, `expired`, `req_expired`, `concurrent`, `req_concurrent`, `below_minimum`, `req_below_minimum`, `no_breakpoint`, `req_no_breakpoint`, `lookback`, `req_lookback`, `cost_actual`, `cost_no_cache`, `cost_perfect`, `cost_unknown`, `write_premium_paid`, `write_premium_read`, `requests_including`)
  SELECT `tenant_id`, '-', 0, `day`, `model`,
    count(*),
    sum(`referenced`),
    sum(`referenced` > 0),
    sum(`opportunity`),
    sum(`opportunity` > 0),
    sum(`reported` * `opportunity`),
    sum(`reported` * `opportunity` > 0),
    sum(`predicted`),
    sum(`predicted` > 0),
    sum(`captured`),
    sum(`captured` > 0),
    sum(`bonus`),
    sum(`bonus` > 0),
    sum(`unconfirmed`),
    sum(`unconfirmed` > 0),
    sum(`unknown`),
    sum(`unknown` > 0),
    sum(`cold`),
    sum(`cold` > 0),
    sum(`drift`),
    sum(`drift` > 0),
    sum(`expired`),
    sum(`expired` > 0),
    sum(`concurrent`),
    sum(`concurrent` > 0),
    sum(`below_minimum`),
    sum(`below_minimum` > 0),
    sum(`no_breakpoint`),
    sum(`no_breakpoint` > 0),
    sum(`lookback`),
    sum(`lookback` > 0),
    sum(`reported` * `cost_actual`),
    sum(`reported` * `cost_no_cache`),
    sum(`reported` * `cost_perfect`),
    sum((1 - `reported`) * `cost_no_cache`),
    0,
    0,
    count(*)
  FROM (
    SELECT r.`tenant_id` AS `tenant_id`, r.`model` AS `model`, c.`started_at` / 86400000 AS `day`,
      coalesce(json_extract(c.`outcome`, '$.capture') = 'reported', 0) AS `reported`,
      coalesce(sum(json_extract(s.`value`, '$.end') - json_extract(s.`value`, '$.start')), 0) AS `referenced`,
      coalesce(sum(json_extract(s.`value`, '$.opportunity')), 0) AS `opportunity`,
      coalesce(sum(json_extract(s.`value`, '$.predicted')), 0) AS `predicted`,
      coalesce(sum(json_extract(s.`value`, '$.classes.captured')), 0) AS `captured`,
      coalesce(sum(json_extract(s.`value`, '$.classes.bonus')), 0) AS `bonus`,
      coalesce(sum(json_extract(s.`value`, '$.classes.unconfirmed')), 0) AS `unconfirmed`,
      coalesce(sum(json_extract(s.`value`, '$.classes.unknown')), 0) AS `unknown`,
      coalesce(sum(json_extract(s.`value`, '$.classes.cold')), 0) AS `cold`,
      coalesce(sum(json_extract(s.`value`, '$.classes.drift')), 0) AS `drift`,
      coalesce(sum(json_extract(s.`value`, '$.classes.expired')), 0) AS `expired`,
      coalesce(sum(json_extract(s.`value`, '$.classes.concurrent')), 0) AS `concurrent`,
      coalesce(sum(json_extract(s.`value`, '$.classes.below_minimum')), 0) AS `below_minimum`,
      coalesce(sum(json_extract(s.`value`, '$.classes.no_breakpoint')), 0) AS `no_breakpoint`,
      coalesce(sum(json_extract(s.`value`, '$.classes.lookback')), 0) AS `lookback`,
      coalesce(sum(json_extract(s.`value`, '$.cost.actual')), 0) AS `cost_actual`,
      coalesce(sum(json_extract(s.`value`, '$.cost.no_cache')), 0) AS `cost_no_cache`,
      coalesce(sum(json_extract(s.`value`, '$.cost.perfect')), 0) AS `cost_perfect`
    FROM `requests` r
    JOIN `reconciliations` c ON c.`request_id` = r.`id`
    LEFT JOIN json_each(c.`outcome`, '$.segments') s
    WHERE r.`status` = 'reconciled' AND json_type(c.`outcome`, '$.segments') = 'array' AND NOT EXISTS (SELECT 1 FROM `request_handles` h WHERE h.`request_id` = r.`id`)
    GROUP BY r.`id`
    HAVING coalesce(sum(json_extract(s.`value`, '$.source') != 'inline'), 0) = 0
  )
  GROUP BY `tenant_id`, `day`, `model`;
