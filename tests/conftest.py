import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


import pytest  # noqa: E402
from locations import Location  # noqa: E402
from s3server import BUCKET, create_bucket, start_server  # noqa: E402


@pytest.fixture(scope="session")
def s3_server():
    """The loopback S3 server, with a bucket; the session's environment points at it (the
    processes the tests start inherit it)."""
    server = start_server()
    create_bucket(server)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in server.env.items():
            patch.setenv(key, value)
        yield server
    server.stop()


_prefixes = iter(range(10**6))


def sweep_root(kind: str, request, tmp_path_factory) -> Location:
    """Where a test's sweeps go: a fresh local folder, or a fresh prefix in the S3 bucket."""
    if kind == "s3":
        request.getfixturevalue("s3_server")
        return Location(f"s3://{BUCKET}/t{next(_prefixes)}-{request.node.name[:40]}".replace(
            "[", "-").replace("]", ""))
    return Location(str(tmp_path_factory.mktemp("sweeps")))


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path_factory) -> Location:
    """A sweep storage root, once local and once on S3."""
    return sweep_root(request.param, request, tmp_path_factory)


@pytest.fixture(scope="session")
def strict_s3():
    """A second loopback S3 server that enforces credentials and IAM policies, holding the
    bucket and one IAM user with no permissions; yields (server, that user's keys)."""
    import boto3

    # The first actions are free (the readiness check, the bucket, the user, its key); after
    # them every request must be signed by a known key and allowed by a policy.
    server = start_server({"INITIAL_NO_AUTH_ACTION_COUNT": "4"})
    client = {"endpoint_url": server.endpoint, "region_name": "us-east-1",
              "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    boto3.client("s3", **client).create_bucket(Bucket=BUCKET)
    iam = boto3.client("iam", **client)
    iam.create_user(UserName="nobody")
    key = iam.create_access_key(UserName="nobody")["AccessKey"]
    yield server, {"AWS_ACCESS_KEY_ID": key["AccessKeyId"],
                   "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    server.stop()
