#!/bin/bash -e
# Installs the outpost package (images/build-image puts outpost_<version>_arm64.deb in files/) and
# enables the box's services; the first boot makes the access point and shows the setup link.
deb="$(ls files/outpost_*_arm64.deb | tail -1)"
install -m 644 "$deb" "${ROOTFS_DIR}/tmp/outpost.deb"
on_chroot <<CHROOT
dpkg -i /tmp/outpost.deb
rm /tmp/outpost.deb
systemctl enable outpost.service outpost-firstboot.service outpost-setup-link.path avahi-daemon.service NetworkManager.service
CHROOT
# The box answers as outpost.local (avahi announces the host name).
echo outpost > "${ROOTFS_DIR}/etc/hostname"
sed -i 's/^127\.0\.1\.1.*/127.0.1.1\toutpost/' "${ROOTFS_DIR}/etc/hosts"
# The journal on the SD card, bounded: logs survive a power cut and never fill the card.
install -d "${ROOTFS_DIR}/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=persistent\nSystemMaxUse=200M\n' > "${ROOTFS_DIR}/etc/systemd/journald.conf.d/outpost.conf"
