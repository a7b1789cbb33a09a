"""Fidelity check: OpenStack's official SDK (openstacksdk) against the local OpenStack
test server (tests/e2e/clouds/openstack.rs). Run by the e2e test `openstack_fidelity`
with the venv made by scripts/setup; every step must pass with the real client.

Environment (not OS_*, which openstacksdk would read itself): CHECK_AUTH_URL, CHECK_USERNAME,
CHECK_PASSWORD, CHECK_PROJECT_NAME,
CHECK_APPLICATION_CREDENTIAL_ID, CHECK_APPLICATION_CREDENTIAL_SECRET, CHECK_PUBLIC_KEY.
"""

import base64
import os
import sys

import openstack
from openstack import exceptions

env = os.environ


def step(msg):
    print("check:", msg, flush=True)


def connect(**auth):
    return openstack.connect(
        auth_url=env["CHECK_AUTH_URL"],
        region_name="RegionOne",
        interface="public",
        identity_api_version="3",
        **auth,
    )


conn = connect(
    username=env["CHECK_USERNAME"],
    password=env["CHECK_PASSWORD"],
    project_name=env["CHECK_PROJECT_NAME"],
    user_domain_name="Default",
    project_domain_name="Default",
)

step("authenticate with a password")
conn.authorize()

step("wrong password is refused (401)")
try:
    connect(
        username=env["CHECK_USERNAME"],
        password="not-the-password",
        project_name=env["CHECK_PROJECT_NAME"],
        user_domain_name="Default",
        project_domain_name="Default",
    ).authorize()
    sys.exit("a wrong password was accepted")
except exceptions.SDKException as e:
    assert "HTTP 401" in str(e), e

step("authenticate with an application credential")
app = connect(
    auth_type="v3applicationcredential",
    application_credential_id=env["CHECK_APPLICATION_CREDENTIAL_ID"],
    application_credential_secret=env["CHECK_APPLICATION_CREDENTIAL_SECRET"],
)
assert len(list(app.compute.flavors())) == 3

step("list flavors, images (paginated), networks, security groups")
flavors = {f.name: f for f in conn.compute.flavors()}
assert set(flavors) == {"m1.tiny", "m1.small", "m1.medium"}, flavors
flavor = conn.compute.find_flavor("m1.small", ignore_missing=False)
assert flavor.ram == 2048, flavor
images = list(conn.image.images())
assert len(images) == 5, [i.name for i in images]
image = conn.image.find_image("debian-12", ignore_missing=False)
assert conn.image.find_image("no-such-image") is None
net = conn.network.find_network("private", ignore_missing=False)
pool = conn.network.find_network("public", ignore_missing=False)
assert pool.is_router_external, pool
groups = [g.name for g in conn.network.security_groups()]
assert "default" in groups, groups

step("import a key pair; a duplicate is a conflict")
kp = conn.compute.create_keypair(name="fidelity", public_key=env["CHECK_PUBLIC_KEY"])
assert kp.fingerprint, kp
try:
    conn.compute.create_keypair(name="fidelity", public_key=env["CHECK_PUBLIC_KEY"])
    sys.exit("a duplicate key pair was accepted")
except exceptions.ConflictException:
    pass

step("unknown flavor is a 400 with Nova's message")
try:
    conn.compute.create_server(
        name="bad", flavor_id="999", image_id=image.id, networks=[{"uuid": net.id}]
    )
    sys.exit("an unknown flavor was accepted")
except exceptions.BadRequestException as e:
    assert "Flavor 999 could not be found" in str(e), e

step("create a server and wait for ACTIVE")
server = conn.compute.create_server(
    name="fidelity-1",
    flavor_id=flavor.id,
    image_id=image.id,
    networks=[{"uuid": net.id}],
    key_name=kp.name,
    security_groups=[{"name": "default"}],
    availability_zone="nova",
    config_drive=True,
    user_data=base64.b64encode(b"#cloud-config\n").decode(),
)
first = conn.compute.get_server(server.id)
assert first.status == "BUILD", first.status
server = conn.compute.wait_for_server(server, status="ACTIVE", wait=300, interval=2)
fixed = [a["addr"] for a in server.addresses["private"] if a["OS-EXT-IPS:type"] == "fixed"]
assert len(fixed) == 1, server.addresses
print("fixed", fixed[0], flush=True)

step("start on an ACTIVE server is a conflict")
try:
    conn.compute.start_server(server)
    sys.exit("os-start on an ACTIVE server was accepted")
except exceptions.ConflictException:
    pass

step("stop, start, reboot")
conn.compute.stop_server(server)
conn.compute.wait_for_server(server, status="SHUTOFF", wait=120, interval=1)
conn.compute.start_server(server)
conn.compute.wait_for_server(server, status="ACTIVE", wait=300, interval=2)
conn.compute.reboot_server(server, "SOFT")
# The local object still says ACTIVE, and wait_for_server returns at once on a status it
# already has: fetch the server (REBOOT now) so the wait is for the reboot's end.
server = conn.compute.get_server(server.id)
assert server.status in ("REBOOT", "ACTIVE"), server.status
conn.compute.wait_for_server(server, status="ACTIVE", wait=300, interval=2)

step("allocate a floating IP on the server's port, detach, attach, release")
port = next(iter(conn.network.ports(device_id=server.id)))
assert port.fixed_ips[0]["ip_address"] == fixed[0], port
fip = conn.network.create_ip(floating_network_id=pool.id, port_id=port.id)
assert fip.floating_ip_address and fip.floating_ip_address != fixed[0], fip
print("floating", fip.floating_ip_address, flush=True)
server = conn.compute.get_server(server.id)
floating = [a["addr"] for a in server.addresses["private"] if a["OS-EXT-IPS:type"] == "floating"]
assert floating == [fip.floating_ip_address], server.addresses
found = list(conn.network.ips(floating_ip_address=fip.floating_ip_address))
assert [f.id for f in found] == [fip.id], found
fip = conn.network.update_ip(fip, port_id=None)
assert fip.port_id is None and fip.status == "DOWN", fip
fip = conn.network.update_ip(fip, port_id=port.id)
assert fip.port_id == port.id and fip.fixed_ip_address == fixed[0], fip
conn.network.delete_ip(fip)
assert conn.network.find_ip(fip.id) is None

step("delete the server and the key pair")
conn.compute.delete_server(server)
conn.compute.wait_for_delete(server, wait=120)
try:
    conn.compute.get_server(server.id)
    sys.exit("a deleted server was found")
except exceptions.NotFoundException as e:
    assert "could not be found" in str(e), e
conn.compute.delete_keypair(kp)
assert conn.compute.find_keypair("fidelity") is None
step("all passed")
