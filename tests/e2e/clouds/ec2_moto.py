"""moto's EC2 for the amazonec2 driver's e2e test (amazonec2_moto).

`setup`: wait for moto_server, then (within INITIAL_NO_AUTH_ACTION_COUNT=3 unauthenticated
calls) make an IAM user with an access key allowed ec2:*; from then on moto checks every
signature. With that key make a VPC and a subnet (moto's account attributes say
default-vpc none) and print one JSON line: access_key, secret_key, vpc, subnet, ami.
`leftovers KEY SECRET`: print one JSON line with what is left: instances that are not
terminated, open spot requests, key pairs, security groups other than the VPCs' default
ones.
`try-bad-secret KEY`: a boto3 call with a wrong secret must fail with AuthFailure.
Env: CHECK_ENDPOINT (http://127.0.0.1:PORT).
"""
import json
import os
import socket
import sys
import time
from urllib.parse import urlparse

import boto3
import botocore.exceptions

ENDPOINT = os.environ["CHECK_ENDPOINT"]
REGION = "us-east-1"


def client(service, key="AKIDSETUP", secret="setup-secret"):
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
    )


def wait_for_port():
    u = urlparse(ENDPOINT)
    deadline = time.time() + 60
    while True:
        try:
            socket.create_connection((u.hostname, u.port), timeout=1).close()
            return
        except OSError:
            if time.time() > deadline:
                raise SystemExit(f"moto did not listen on {ENDPOINT}")
            time.sleep(0.2)


def setup():
    wait_for_port()
    iam = client("iam")
    iam.create_user(UserName="dmw")
    ak = iam.create_access_key(UserName="dmw")["AccessKey"]
    iam.put_user_policy(
        UserName="dmw",
        PolicyName="ec2",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}],
            }
        ),
    )
    key, secret = ak["AccessKeyId"], ak["SecretAccessKey"]
    ec2 = client("ec2", key, secret)
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(
        VpcId=vpc, CidrBlock="10.77.1.0/24", AvailabilityZone="us-east-1a"
    )["Subnet"]["SubnetId"]
    ami = ec2.describe_images()["Images"][0]["ImageId"]
    print(json.dumps({"access_key": key, "secret_key": secret, "vpc": vpc,
                      "subnet": subnet, "ami": ami}))


def leftovers(key, secret):
    ec2 = client("ec2", key, secret)
    left = []
    for r in ec2.describe_instances()["Reservations"]:
        for i in r["Instances"]:
            if i["State"]["Name"] != "terminated":
                left.append(f"instance {i['InstanceId']} {i['State']['Name']}")
    for s in ec2.describe_spot_instance_requests()["SpotInstanceRequests"]:
        if s["State"] not in ("cancelled", "closed"):
            left.append(f"spot request {s['SpotInstanceRequestId']} {s['State']}")
    for k in ec2.describe_key_pairs()["KeyPairs"]:
        left.append(f"key pair {k['KeyName']}")
    for g in ec2.describe_security_groups()["SecurityGroups"]:
        if g["GroupName"] != "default":
            left.append(f"security group {g['GroupId']} {g['GroupName']}")
    print(json.dumps({"left": left}))


def try_bad_secret(key):
    try:
        client("ec2", key, "not-the-secret").describe_vpcs()
    except botocore.exceptions.ClientError as e:
        print(json.dumps({"code": e.response["Error"]["Code"]}))
        return
    print(json.dumps({"code": "none"}))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "setup":
        setup()
    elif cmd == "leftovers":
        leftovers(sys.argv[2], sys.argv[3])
    elif cmd == "try-bad-secret":
        try_bad_secret(sys.argv[2])
    else:
        raise SystemExit(f"unknown command {cmd}")
