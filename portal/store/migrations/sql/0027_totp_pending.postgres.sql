-- 0027: TOTP enrollment from the operator console. The secret the console showed the
-- operator (as a QR code and as text) waits here until the operator enters a valid
-- code from it; only then does it become totp_secret and a login ask for codes.
-- '' = nothing pending.
ALTER TABLE "operators" ADD COLUMN "totp_pending" VARCHAR(64) NOT NULL DEFAULT '';
