"""DigitalOcean's official Python client (pydo) against the local DigitalOcean API.

Run by the e2e test digitalocean_fidelity with CHECK_ENDPOINT, CHECK_TOKEN and
CHECK_PUBLIC_KEY set. Prints "check: all passed" when every step worked.
"""
import os
import sys
import time

import pydo
from azure.core.exceptions import HttpResponseError

endpoint = os.environ["CHECK_ENDPOINT"]
token = os.environ["CHECK_TOKEN"]
public_key = os.environ["CHECK_PUBLIC_KEY"]
# Plain http: azure-core refuses bearer tokens over http unless told not to.
kw = {"enforce_https": False}


def step(text):
    print(f"check: {text}", flush=True)


def fail(text):
    print(f"check FAILED: {text}", flush=True)
    sys.exit(1)


client = pydo.Client(token=token, endpoint=endpoint)

# A wrong token is refused with DigitalOcean's error body.
bad = pydo.Client(token="wrong", endpoint=endpoint)
try:
    bad.regions.list(**kw)
    fail("a wrong token was accepted")
except HttpResponseError as e:
    if e.status_code != 401:
        fail(f"wrong token: {e.status_code}")
step("401 for a wrong token")

sizes = client.sizes.list(per_page=2, **kw)
if len(sizes["sizes"]) != 2 or sizes["meta"]["total"] < 3 or "next" not in sizes["links"]["pages"]:
    fail(f"sizes pagination: {sizes}")
page2 = client.sizes.list(per_page=2, page=2, **kw)
if page2["sizes"][0]["slug"] == sizes["sizes"][0]["slug"]:
    fail("page 2 repeats page 1")
step(f"sizes: {sizes['meta']['total']} over pages")
regions = client.regions.list(**kw)
if not any(r["slug"] == "nyc3" for r in regions["regions"]):
    fail(f"regions: {regions}")
images = client.images.list(**kw)
if not any(i["slug"] == "debian-12-x64" for i in images["images"]):
    fail(f"images: {images}")
step("regions and images listed")

key = client.ssh_keys.create(body={"name": "fidelity", "public_key": public_key}, **kw)["ssh_key"]
step(f"ssh key {key['id']} fingerprint {key['fingerprint']}")
got = client.ssh_keys.get(ssh_key_identifier=key["fingerprint"], **kw)
if got["ssh_key"]["id"] != key["id"]:
    fail(f"key by fingerprint: {got}")
try:
    client.ssh_keys.create(body={"name": "again", "public_key": public_key}, **kw)
    fail("a duplicate key was accepted")
except HttpResponseError as e:
    if e.status_code != 422:
        fail(f"duplicate key: {e.status_code}")
step("422 for a key already in use")

created = client.droplets.create(
    body={
        "name": "fidelity-1",
        "region": "nyc3",
        "size": "s-1vcpu-1gb",
        "image": "debian-12-x64",
        "ssh_keys": [key["id"]],
        "tags": ["dmw-fidelity"],
    },
    **kw,
)
droplet_id = created["droplet"]["id"]
if created["droplet"]["status"] != "new":
    fail(f"new droplet: {created}")
step(f"droplet {droplet_id} created")
deadline = time.time() + 300
while True:
    d = client.droplets.get(droplet_id=droplet_id, **kw)["droplet"]
    if d["status"] == "active" and any(n["type"] == "public" for n in d["networks"]["v4"]):
        break
    if time.time() > deadline:
        fail(f"droplet never became active: {d}")
    time.sleep(1)
ip = [n["ip_address"] for n in d["networks"]["v4"] if n["type"] == "public"][0]
step(f"droplet active at {ip}")


def act(kind, want):
    a = client.droplet_actions.post(droplet_id=droplet_id, body={"type": kind}, **kw)["action"]
    if a["status"] != "in-progress" or a["type"] != kind:
        fail(f"action {kind}: {a}")
    end = time.time() + 300
    while True:
        a = client.droplet_actions.get(droplet_id=droplet_id, action_id=a["id"], **kw)["action"]
        if a["status"] == "completed":
            break
        if a["status"] == "errored" or time.time() > end:
            fail(f"action {kind}: {a}")
        time.sleep(1)
    status = client.droplets.get(droplet_id=droplet_id, **kw)["droplet"]["status"]
    if status != want:
        fail(f"after {kind} the droplet is {status}, not {want}")
    step(f"{kind} → {want}")


act("power_off", "off")
act("power_on", "active")

listed = client.droplets.list(tag_name="dmw-fidelity", **kw)
if [x["id"] for x in listed["droplets"]] != [droplet_id]:
    fail(f"list by tag: {listed}")
client.droplets.destroy(droplet_id=droplet_id, **kw)
gone = client.droplets.get(droplet_id=droplet_id, **kw)
# pydo returns the error body for a documented 404 instead of raising.
if gone.get("id") != "not_found":
    fail(f"deleted droplet: {gone}")
step("droplet deleted (404 not_found after)")
client.ssh_keys.delete(ssh_key_identifier=key["id"], **kw)
step("ssh key deleted")
print("check: all passed", flush=True)
