CREATE TABLE `request_handles` (
	`tenant_id` text NOT NULL,
	`handle_id` text NOT NULL,
	`rendered_at` integer NOT NULL,
	`request_id` text NOT NULL,
	PRIMARY KEY(`tenant_id`, `handle_id`, `rendered_at`, `request_id`)
);
--> statement-breakpoint
-- Every handle id on the paths of the requests already recorded (a ref is `id@version`).
INSERT OR IGNORE INTO `request_handles` (`tenant_id`, `handle_id`, `rendered_at`, `request_id`)
  SELECT DISTINCT r.`tenant_id`, substr(p.value, 1, instr(p.value || '@', '@') - 1), r.`rendered_at`, r.`id`
  FROM `requests` r, json_each(r.`segments`) s, json_each(json_extract(s.value, '$.path')) p;
