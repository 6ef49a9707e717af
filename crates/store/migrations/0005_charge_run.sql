-- 0005: where each wallet's daily charging stands (issue 5), so a day's run reads one row per
-- consumer and parses nothing it wrote before.
--
-- A month is charged in order from its first day, so the days charged are the first days of
-- the month up to `charged_through`. The month-to-date figures (units in the tariff's billing
-- unit, in total and per TOD zone 1..8) are those the last charge or true-up was computed on;
-- `month_charged` is what the month's daily charges and true-ups debited (paise, positive), and
-- `month_trueups` how many true-ups it has had (their causes are numbered), `month_estimated`
-- how many of its charged days were estimated and not trued up since. A wallet whose
-- `charge_month` is not the month being charged starts that month from nothing.
ALTER TABLE wallet ADD COLUMN charge_month TEXT;
ALTER TABLE wallet ADD COLUMN charged_through TEXT;
ALTER TABLE wallet ADD COLUMN month_units INTEGER NOT NULL DEFAULT 0;
ALTER TABLE wallet ADD COLUMN month_z1 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE wallet ADD COLUMN month_z2 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE wallet ADD COLUMN month_z3 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE wallet ADD COLUMN month_z4 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE wallet ADD COLUMN month_z5 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE wallet ADD COLUMN month_z6 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE wallet ADD COLUMN month_z7 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE wallet ADD COLUMN month_z8 INTEGER NOT NULL DEFAULT 0;
ALTER TABLE wallet ADD COLUMN month_charged INTEGER NOT NULL DEFAULT 0;
ALTER TABLE wallet ADD COLUMN month_trueups INTEGER NOT NULL DEFAULT 0;
-- days of the month charged on estimated consumption and not trued up since: the wallets the
-- daily true-up looks at
ALTER TABLE wallet ADD COLUMN month_estimated INTEGER NOT NULL DEFAULT 0;
CREATE INDEX wallet_estimated ON wallet (charge_month) WHERE month_estimated > 0;

-- Wallets charged before this version: their latest charged month, from the daily entries'
-- itemised details (units per day; no zone split was kept then) and the month's true-ups.
UPDATE wallet SET
    charge_month = m.month || '-01',
    charged_through = m.last_day,
    month_units = m.units,
    month_charged = m.charged + COALESCE((
        SELECT -SUM(t.amount) FROM wallet_entry t
        WHERE t.consumer_no = wallet.consumer_no AND t.cause LIKE 'trueup/' || m.month || '/%'
    ), 0),
    month_trueups = (
        SELECT COUNT(*) FROM wallet_entry t
        WHERE t.consumer_no = wallet.consumer_no AND t.cause LIKE 'trueup/' || m.month || '/%'
    )
FROM (
    SELECT consumer_no, substr(cause, 7, 7) AS month, MAX(substr(cause, 7, 10)) AS last_day,
           SUM(json_extract(detail, '$.units')) AS units, -SUM(amount) AS charged
    FROM wallet_entry WHERE cause LIKE 'daily/%'
    GROUP BY consumer_no, substr(cause, 7, 7)
) AS m
WHERE m.consumer_no = wallet.consumer_no
  AND m.month = (
      SELECT MAX(substr(e.cause, 7, 7)) FROM wallet_entry e
      WHERE e.consumer_no = wallet.consumer_no AND e.cause LIKE 'daily/%'
  );
