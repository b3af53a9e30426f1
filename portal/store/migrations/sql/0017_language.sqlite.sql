-- The portal in Arabic, French and English (issue 20): the subscriber's chosen
-- language and a reseller's default for subscribers who chose none. NULL = not
-- chosen (portal.core.language resolves: subscriber -> reseller -> 'en').
-- SQLite checks an added column's CHECK on new writes; existing rows are NULL.
ALTER TABLE subscribers ADD COLUMN language VARCHAR(8)
    CHECK ("language" IS NULL OR "language" IN ('en', 'fr', 'ar'));
ALTER TABLE resellers ADD COLUMN default_language VARCHAR(8)
    CHECK ("default_language" IS NULL OR "default_language" IN ('en', 'fr', 'ar'));
