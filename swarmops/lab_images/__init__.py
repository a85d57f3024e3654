"""Lab images: the three roles built from Debian's packages and Go modules, for engines that can
pull no image (an air-gapped swarm, a machine without a registry, the real-engine tests).

They honour the contracts of the official images the product runs (docker-library's mysql and
wordpress, gliderlabs/logspout): the same environment variables, `_FILE` secrets, first start,
ports, health-check commands and stop behaviour. They are NOT the product's defaults: MariaDB
10.11 stands in for MySQL 8.4, Debian's WordPress 6.1 for 6.6, logspout
v3.2.6 for v3.2.14. `python -m swarmops.lab_images` builds them and prints their tags.
"""
