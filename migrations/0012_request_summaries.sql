CREATE TABLE `request_summaries` (
	`seq` integer PRIMARY KEY NOT NULL,
	`summary` text NOT NULL,
	FOREIGN KEY (`seq`) REFERENCES `reconciliations`(`seq`) ON UPDATE no action ON DELETE no action
);
