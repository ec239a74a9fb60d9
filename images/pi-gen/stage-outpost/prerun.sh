#!/bin/bash -e
# Start from the Lite image stage2 made.
if [ ! -d "${ROOTFS_DIR}" ]; then
	copy_previous
fi
