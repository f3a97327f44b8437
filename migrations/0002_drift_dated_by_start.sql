-- Drift findings are dated by their request's start (as its rollups are), so a report's range finds both.
-- Rows written before that were dated by when the usage arrived: they are dated again here.
UPDATE `drift_findings` SET `at` = (
  SELECT `c`.`started_at` FROM `reconciliations` `c` WHERE `c`.`request_id` = `drift_findings`.`request_id`
) WHERE EXISTS (
  SELECT 1 FROM `reconciliations` `c` WHERE `c`.`request_id` = `drift_findings`.`request_id` AND `c`.`started_at` IS NOT NULL
);
