"""Names the deployed swarm objects carry: one source for the program and the tools that inspect
or operate the live swarm (preflight, verify, lab, rotate). No imports, so those tools load fast."""

ENV_LABEL_KEY = "env"  # node label every service is constrained on: node.labels.env==<envLabel>
LABEL_PREFIX = "wordpress-swarm."  # of every label this project puts on swarm objects
ROLE_LABEL = f"{LABEL_PREFIX}role"
STACK_LABEL = f"{LABEL_PREFIX}stack"
ENCRYPTED_LABEL = f"{LABEL_PREFIX}encrypted"  # on the private overlay: "true" or "false"

SECRETS_DIR = "/run/secrets"
MYSQL_ROOT_PASSWORD_FILE = "mysql-root-password"
MYSQL_USER_PASSWORD_FILE = "mysql-user-password"
MYSQL_INIT_FILE = "mysql-init.sql"  # what the server runs at each start (components/mysql.py)
WORDPRESS_DB_PASSWORD_FILE = "wordpress-db-password"

# The eight keys and salts of wp-config.php, each a generated secret read through WORDPRESS_<KEY>_FILE.
WORDPRESS_KEYS = (
    "AUTH_KEY",
    "SECURE_AUTH_KEY",
    "LOGGED_IN_KEY",
    "NONCE_KEY",
    "AUTH_SALT",
    "SECURE_AUTH_SALT",
    "LOGGED_IN_SALT",
    "NONCE_SALT",
)


def wordpress_key_file(key: str) -> str:
    """The secret file name of a key: AUTH_KEY -> wordpress-auth-key."""
    return "wordpress-" + key.lower().replace("_", "-")
