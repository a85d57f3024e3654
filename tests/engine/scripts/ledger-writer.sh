#!/bin/bash
# Runs in a one-shot task shaped like the stack's database backup job (its image, network, secret
# and DB_* variables): makes a ledger of two InnoDB tables holding 1000 between them and a filler
# table that makes a dump take a while, then moves 1 from one table to the other in a transaction
# each, for WRITE_SECONDS. Every consistent state sums to 1000; a torn one doesn't. Prints "moved N".
set -euo pipefail

sql() {
  mysql --defaults-extra-file=<(printf '[client]\nuser=%s\npassword="%s"\nhost=%s\n' \
    "$DB_USER" "$(cat "$DB_PASSWORD_FILE")" "$DB_HOST") "$DB_NAME" "$@"
}

sql <<'SQL'
CREATE TABLE IF NOT EXISTS wpswarm_ledger_a (id INT PRIMARY KEY, balance INT NOT NULL) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS wpswarm_ledger_b (id INT PRIMARY KEY, balance INT NOT NULL) ENGINE=InnoDB;
CREATE TABLE IF NOT EXISTS wpswarm_filler (id INT AUTO_INCREMENT PRIMARY KEY, body TEXT) ENGINE=InnoDB;
REPLACE INTO wpswarm_ledger_a VALUES (1, 1000);
REPLACE INTO wpswarm_ledger_b VALUES (1, 0);
INSERT INTO wpswarm_filler (body)
  SELECT REPEAT('x', 2000) FROM information_schema.columns c1, information_schema.columns c2 LIMIT 20000;
SQL
echo "ready"

end=$((SECONDS + WRITE_SECONDS))
moved=0
while [ "$SECONDS" -lt "$end" ]; do
  sql -e "START TRANSACTION;
    UPDATE wpswarm_ledger_a SET balance = balance - 1 WHERE id = 1;
    UPDATE wpswarm_ledger_b SET balance = balance + 1 WHERE id = 1;
    COMMIT;"
  moved=$((moved + 1))
done
echo "moved $moved"
