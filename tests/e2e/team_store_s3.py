"""boto3, AWS's own S3 client, beside dmw's shared store on moto's S3 server.

`wait`: until the server answers, then make the bucket (and check that moto enforces
conditional writes: a create-once on an existing key and a stale If-Match answer 412).
`dump PREFIX`: every object under PREFIX as JSON: its key and its bytes (base64).
`put KEY`: write stdin to KEY, unconditionally (as anyone with write access can).

Endpoint in S3_ENDPOINT, bucket in S3_BUCKET; credentials from the environment.
"""
import base64
import json
import os
import sys
import time

import boto3
from botocore.exceptions import ClientError

s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name="us-east-1")
bucket = os.environ["S3_BUCKET"]

if sys.argv[1] == "wait":
    for _ in range(100):
        try:
            s3.list_buckets()
            break
        except Exception:
            time.sleep(0.2)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="probe", Body=b"1")
    codes = []
    for kw in ({"IfNoneMatch": "*"}, {"IfMatch": '"0000"'}):
        try:
            s3.put_object(Bucket=bucket, Key="probe", Body=b"2", **kw)
            codes.append("200")
        except ClientError as e:
            codes.append(e.response["Error"]["Code"])
    s3.delete_object(Bucket=bucket, Key="probe")
    print(json.dumps({"conditional": codes}))
elif sys.argv[1] == "dump":
    out = []
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=sys.argv[2])
    for page in pages:
        for o in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            out.append({"key": o["Key"], "body": base64.b64encode(body).decode()})
    print(json.dumps(out))
elif sys.argv[1] == "put":
    s3.put_object(Bucket=bucket, Key=sys.argv[2], Body=sys.stdin.buffer.read())
    print(json.dumps({"put": sys.argv[2]}))
