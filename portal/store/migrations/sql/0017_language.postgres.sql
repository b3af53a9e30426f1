-- The portal in Arabic, French and English (issue 20): the subscriber's chosen
-- language and a reseller's default for subscribers who chose none. NULL = not
-- chosen (portal.core.language resolves: subscriber -> reseller -> 'en').
ALTER TABLE subscribers ADD COLUMN language VARCHAR(8)
    CONSTRAINT subscribers_language_check CHECK (language IN ('en', 'fr', 'ar'));
ALTER TABLE resellers ADD COLUMN default_language VARCHAR(8)
    CONSTRAINT resellers_default_language_check CHECK (default_language IN ('en', 'fr', 'ar'));
