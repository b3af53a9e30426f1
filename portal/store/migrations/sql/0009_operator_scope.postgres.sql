-- An operator may belong to one reseller: then it sees only the tickets of that
-- reseller's subscribers and of its sub-resellers'. NULL: the ISP's own staff, all.
ALTER TABLE "operators" ADD COLUMN "reseller_id" INT REFERENCES "resellers" ("id") ON DELETE RESTRICT;
CREATE INDEX "idx_operators_reseller" ON "operators" ("reseller_id");
