ALTER TABLE `requests` ADD `provider_history` text;
