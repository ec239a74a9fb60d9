#!/usr/bin/python3
"""A mock BlueZ on a private bus, for tests: starts its own `dbus-daemon` (standing in for the system
bus) and python-dbusmock's bluez5 template on it, prints `bus <address>`, then takes one command per
line on standard input, answering `ok …` or `error …`. Everything stops when standard input closes.

    adapter hci0                       add an adapter
    device hci0 AA:BB:CC:DD:EE:FF      add a band (a device with no advertisement data yet)
    adv AA:BB:CC:DD:EE:FF -60 ffff01…  set its RSSI and manufacturer data (company id, then data, hex)
    rssi AA:BB:CC:DD:EE:FF -70         set its RSSI only
    remove hci0 AA:BB:CC:DD:EE:FF      remove it (InterfacesRemoved)
    calls hci0 StartDiscovery          how many times the adapter's method was called
"""
import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import time

import dbus

MOCK = 'org.freedesktop.DBus.Mock'

def die_with_parent():
    """The bus and the mock stop when this helper does, even if it is killed."""
    ctypes.CDLL('libc.so.6').prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


folder = tempfile.mkdtemp(prefix='outpost-bluez-')
daemon = subprocess.Popen(['dbus-daemon', '--session', '--nofork', '--print-address=1',
                           f'--address=unix:path={folder}/bus'], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True, preexec_fn=die_with_parent)
address = daemon.stdout.readline().strip()
os.environ['DBUS_SYSTEM_BUS_ADDRESS'] = address
bluez = subprocess.Popen([sys.executable, '-m', 'dbusmock', '--system', '--template', 'bluez5'],
                         stdout=subprocess.DEVNULL, preexec_fn=die_with_parent)
bus = dbus.SystemBus()
deadline = time.time() + 20
while not bus.name_has_owner('org.bluez'):
    if time.time() > deadline:
        sys.exit('the bluez5 mock did not come up')
    time.sleep(0.1)
print('bus', address, flush=True)


def obj(path):
    return bus.get_object('org.bluez', path)


def device_path(address, adapter='hci0'):
    return f"/org/bluez/{adapter}/dev_{address.replace(':', '_').upper()}"


def update(address, props):
    # One PropertiesChanged per property, through the standard Set (this dbusmock's UpdateProperties
    # cannot wrap a dictionary such as ManufacturerData).
    device = obj(device_path(address))
    for name, value in props.items():
        device.Set('org.bluez.Device1', name, value, dbus_interface=dbus.PROPERTIES_IFACE)


for line in sys.stdin:
    words = line.split()
    if not words:
        continue
    try:
        cmd = words[0]
        if cmd == 'adapter':
            obj('/org/bluez').AddAdapter(words[1], 'outpost-test', dbus_interface='org.bluez.Mock')
            out = ''
        elif cmd == 'device':
            obj('/org/bluez').AddDevice(words[1], words[2], 'band', dbus_interface='org.bluez.Mock')
            out = ''
        elif cmd == 'adv':
            raw = bytes.fromhex(words[3])
            company = int.from_bytes(raw[:2], 'big')
            data = dbus.Array([dbus.Byte(b) for b in raw[2:]], signature='y', variant_level=1)
            update(words[1], {
                'ManufacturerData': dbus.Dictionary({dbus.UInt16(company): data}, signature='qv'),
                'RSSI': dbus.Int16(int(words[2])),
            })
            out = ''
        elif cmd == 'rssi':
            update(words[1], {'RSSI': dbus.Int16(int(words[2]))})
            out = ''
        elif cmd == 'remove':
            obj(f'/org/bluez/{words[1]}').RemoveDevice(dbus.ObjectPath(device_path(words[2], words[1])),
                                                       dbus_interface='org.bluez.Adapter1')
            out = ''
        elif cmd == 'calls':
            calls = obj(f'/org/bluez/{words[1]}').GetCalls(dbus_interface=MOCK)
            out = str(sum(1 for c in calls if c[1] == words[2]))
        else:
            raise ValueError(f'unknown command {cmd}')
        print('ok', out, flush=True)
    except Exception as e:  # the test reads the message
        print('error', str(e).replace('\n', ' '), flush=True)

bluez.terminate()
daemon.terminate()
