"""Creates the test bucket and checks that the server honours conditional PUT.

A server that ignores `If-None-Match: *` silently loses concurrent Delta
commits; the tests refuse to run against one.
"""

import sys
import uuid

import boto3
from botocore.exceptions import ClientError


def main() -> int:
    endpoint, bucket = sys.argv[1], sys.argv[2]
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    s3.create_bucket(Bucket=bucket)
    key = f"_probe/{uuid.uuid4()}"
    s3.put_object(Bucket=bucket, Key=key, Body=b"1", IfNoneMatch="*")
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=b"2", IfNoneMatch="*")
    except ClientError as error:
        if error.response["ResponseMetadata"]["HTTPStatusCode"] == 412:
            s3.delete_object(Bucket=bucket, Key=key)
            return 0
        raise
    print(f"{endpoint} ignores If-None-Match: concurrent Delta commits would be lost", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
