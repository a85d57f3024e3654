<?php
/*
 * The lab WordPress role's configuration: the official image's environment contract
 * (docker-library/wordpress wp-config-docker.php), written anew for Debian's WordPress.
 * Every setting comes from WORDPRESS_<NAME>, or from the file WORDPRESS_<NAME>_FILE names (a swarm
 * secret), read on every request as the web server's user. No secret is kept in this file.
 */

function getenv_docker($name, $default) {
	if ($file = getenv($name . '_FILE')) {
		return rtrim(file_get_contents($file), "\r\n");
	}
	if (($value = getenv($name)) !== false) {
		return $value;
	}
	return $default;
}

// A key or salt not given is this container's own, made by the entrypoint: as in the official
// image, sessions then end with the container and differ between replicas.
function lab_key($name) {
	return getenv_docker('WORDPRESS_' . $name, @file_get_contents('/var/lib/wordpress-lab/keys/' . $name));
}

define('DB_NAME', getenv_docker('WORDPRESS_DB_NAME', 'wordpress'));
define('DB_USER', getenv_docker('WORDPRESS_DB_USER', 'example username'));
define('DB_PASSWORD', getenv_docker('WORDPRESS_DB_PASSWORD', 'example password'));
define('DB_HOST', getenv_docker('WORDPRESS_DB_HOST', 'mysql'));
define('DB_CHARSET', getenv_docker('WORDPRESS_DB_CHARSET', 'utf8'));
define('DB_COLLATE', getenv_docker('WORDPRESS_DB_COLLATE', ''));

foreach (array('AUTH_KEY', 'SECURE_AUTH_KEY', 'LOGGED_IN_KEY', 'NONCE_KEY',
		'AUTH_SALT', 'SECURE_AUTH_SALT', 'LOGGED_IN_SALT', 'NONCE_SALT') as $lab_key_name) {
	define($lab_key_name, lab_key($lab_key_name));
}

$table_prefix = getenv_docker('WORDPRESS_TABLE_PREFIX', 'wp_');
define('WP_DEBUG', (bool) getenv_docker('WORDPRESS_DEBUG', ''));

// Behind a TLS-terminating proxy, as the official image: trust its X-Forwarded-Proto.
if (isset($_SERVER['HTTP_X_FORWARDED_PROTO']) && strpos($_SERVER['HTTP_X_FORWARDED_PROTO'], 'https') !== false) {
	$_SERVER['HTTPS'] = 'on';
}

if ($lab_extra = getenv_docker('WORDPRESS_CONFIG_EXTRA', '')) {
	eval($lab_extra);
}

if (!defined('ABSPATH')) {
	define('ABSPATH', __DIR__ . '/');
}
require_once ABSPATH . 'wp-settings.php';
