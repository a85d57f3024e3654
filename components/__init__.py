"""Pulumi components of the WordPress stack: resources declared from plain values and Inputs, no I/O."""

# The package of the components' type tokens: <package>:<module>:<Name>.
PACKAGE = "wordpress-swarm"
