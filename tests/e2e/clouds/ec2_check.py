"""boto3 (AWS's official Python SDK) against the local EC2 (e2e ec2_fidelity).

Env: CHECK_ENDPOINT, CHECK_ACCESS_KEY, CHECK_SECRET_KEY, CHECK_PUBLIC_KEY.
Prints "check: all passed" at the end; any failure raises.
"""
import os

import boto3
import botocore.exceptions

ENDPOINT = os.environ["CHECK_ENDPOINT"]


def client(secret=os.environ["CHECK_SECRET_KEY"]):
    return boto3.client(
        "ec2",
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id=os.environ["CHECK_ACCESS_KEY"],
        aws_secret_access_key=secret,
    )


def code_of(call):
    try:
        call()
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
    raise AssertionError("no error")


def fast(name):
    return {"Delay": 2, "MaxAttempts": 150}


ec2 = client()
assert code_of(lambda: client("wrong-secret").describe_vpcs()) == "AuthFailure"
print("bad secret: AuthFailure")

vpc = ec2.describe_vpcs()["Vpcs"][0]
assert vpc["IsDefault"], vpc
subnets = ec2.describe_subnets(
    Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]},
             {"Name": "availability-zone", "Values": ["us-east-1a"]}]
)["Subnets"]
assert len(subnets) == 1 and subnets[0]["AvailabilityZone"] == "us-east-1a", subnets
images = ec2.describe_images(
    Owners=["099720720109"],
    Filters=[{"Name": "name", "Values": ["ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*"]}],
)["Images"]
assert len(images) == 1, images
debian = ec2.describe_images(Filters=[{"Name": "name", "Values": ["debian-12-*"]}])["Images"][0]
print("vpc, subnet, images: ok")

key = ec2.import_key_pair(KeyName="fidelity", PublicKeyMaterial=os.environ["CHECK_PUBLIC_KEY"].encode())
assert key["KeyName"] == "fidelity" and key["KeyPairId"].startswith("key-"), key
assert key["KeyFingerprint"].count(":") == 15, key
assert code_of(lambda: ec2.import_key_pair(
    KeyName="fidelity", PublicKeyMaterial=os.environ["CHECK_PUBLIC_KEY"].encode())) == "InvalidKeyPair.Duplicate"
assert code_of(lambda: ec2.import_key_pair(KeyName="bad", PublicKeyMaterial=b"not a key")) == "InvalidKeyPair.Format"
assert [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]] == ["fidelity"]
assert code_of(lambda: ec2.describe_key_pairs(KeyNames=["nope"])) == "InvalidKeyPair.NotFound"
print("key pair: ok")

sg = ec2.create_security_group(GroupName="fidelity", Description="boto3 check", VpcId=vpc["VpcId"])["GroupId"]
perm = [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=perm)
assert code_of(lambda: ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=perm)) == "InvalidPermission.Duplicate"
g = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["fidelity"]}])["SecurityGroups"][0]
assert g["GroupId"] == sg and g["IpPermissions"][0]["FromPort"] == 22, g
print("security group: ok")

assert code_of(lambda: ec2.run_instances(ImageId="ami-nope", MinCount=1, MaxCount=1)) == "InvalidAMIID.NotFound"
run = ec2.run_instances(
    ImageId=debian["ImageId"], MinCount=1, MaxCount=1, KeyName="fidelity", InstanceType="t2.micro",
    SubnetId=subnets[0]["SubnetId"], SecurityGroupIds=[sg],
    TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "fidelity"}]}],
)
inst = run["Instances"][0]
iid = inst["InstanceId"]
assert inst["State"]["Name"] == "pending", inst
ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=fast("running"))
d = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
assert d["State"] == {"Code": 16, "Name": "running"}, d["State"]
assert d["PublicIpAddress"] and d["KeyName"] == "fidelity", d
assert {"Key": "Name", "Value": "fidelity"} in d["Tags"], d["Tags"]
assert d["SecurityGroups"][0]["GroupId"] == sg, d
print("run instance:", iid, d["PublicIpAddress"])
assert code_of(lambda: ec2.delete_security_group(GroupId=sg)) == "DependencyViolation"

ec2.stop_instances(InstanceIds=[iid])
ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig=fast("stopped"))
ec2.start_instances(InstanceIds=[iid])
ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=fast("running"))
ec2.reboot_instances(InstanceIds=[iid])
print("stop, start, reboot: ok")

t = ec2.terminate_instances(InstanceIds=[iid])["TerminatingInstances"][0]
assert t["CurrentState"]["Name"] == "shutting-down", t
ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig=fast("terminated"))
assert code_of(lambda: ec2.describe_instances(InstanceIds=["i-00000000000000000"])) == "InvalidInstanceID.NotFound"
ec2.delete_security_group(GroupId=sg)
ec2.delete_key_pair(KeyName="fidelity")
assert ec2.describe_key_pairs()["KeyPairs"] == []
print("terminate, cleanup: ok")
print("check: all passed")
