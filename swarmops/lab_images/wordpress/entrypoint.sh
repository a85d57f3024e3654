#!/bin/bash
# The lab WordPress role: Debian's WordPress, Apache and PHP behind the official wordpress image's
# environment contract (see wp-config.php). Core lives in the image at /var/www/html; wp-content
# is the service's volume, which a first start fills with the image's themes and plugins, as the
# official image's entrypoint does. Then Apache runs in the foreground; SIGWINCH (the image's stop
# signal) stops it gracefully.
set -Eeuo pipefail

content=/var/www/html/wp-content
keys=/var/lib/wordpress-lab/keys

if [ "${1:-}" = apache2-foreground ]; then
  if [ ! -d "$content/themes" ]; then
    echo "wp-content is empty: copying the image's themes and plugins into it"
    cp -a /usr/src/wordpress/wp-content/. "$content/"
  fi
  mkdir -p "$content/uploads"
  chown www-data:www-data "$content" "$content/uploads"

  # Keys and salts not given by WORDPRESS_<KEY>[_FILE]: this container's own random ones.
  mkdir -p "$keys"
  for key in AUTH_KEY SECURE_AUTH_KEY LOGGED_IN_KEY NONCE_KEY AUTH_SALT SECURE_AUTH_SALT LOGGED_IN_SALT NONCE_SALT; do
    given="WORDPRESS_$key" given_file="WORDPRESS_${key}_FILE"
    if [ -z "${!given:-}" ] && [ -z "${!given_file:-}" ] && [ ! -s "$keys/$key" ]; then
      head -c 48 /dev/urandom | base64 -w0 >"$keys/$key"
    fi
  done
  chown -R www-data:www-data "$keys"
  chmod 0500 "$keys"
  find "$keys" -type f -exec chmod 0400 {} +

  # Debian's Apache environment (user, pid and lock paths); it reads variables that may be unset.
  set +u
  # shellcheck source=/dev/null
  . /etc/apache2/envvars
  set -u
  mkdir -p "$APACHE_RUN_DIR" "$APACHE_LOCK_DIR"
  rm -f "${APACHE_PID_FILE:?}"
  exec apache2 -DFOREGROUND
fi
exec "$@"
