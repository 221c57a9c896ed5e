"""A reference for the benchmark, not part of the product.

The verify-and-roll Lambda function a team would write by hand with boto3, for the side-by-side
benchmark of pushdeploy's image-verifier (bench/src/side_by_side.rs). It does what the manual
workflow needs and no more: the image tag from the event (a CodeBuild state-change event's
IMAGE_TAG variable, or an ECR push event's image-tag), one DescribeImages of that tag and
`latest` (the build pushed both), a check that both name one digest, and for each service in turn:
DescribeServices, DescribeTaskDefinition, RegisterTaskDefinition with the container's image
pinned to repo@digest, UpdateService.

Configuration from the environment: REPOSITORY, CLUSTER, SERVICES (comma-separated), CONTAINER.
Run as the Python runtime runs it: `python -m awslambdaric verify_and_roll.handler`.
"""

import os

import boto3

REPOSITORY = os.environ["REPOSITORY"]
CLUSTER = os.environ["CLUSTER"]
SERVICES = [s for s in os.environ["SERVICES"].split(",") if s]
CONTAINER = os.environ["CONTAINER"]

# Clients at import, as people do: reused by every invocation of the container.
ecr = boto3.client("ecr")
ecs = boto3.client("ecs")

# What RegisterTaskDefinition accepts of a described task definition.
REGISTER_FIELDS = (
    "family",
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "containerDefinitions",
    "volumes",
    "placementConstraints",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "pidMode",
    "ipcMode",
    "proxyConfiguration",
    "inferenceAccelerators",
    "ephemeralStorage",
    "runtimePlatform",
    "enableFaultInjection",
)


def image_tag(event):
    """The tag the event names: CodeBuild's IMAGE_TAG variable, or ECR's image-tag."""
    detail = event.get("detail", {})
    if "image-tag" in detail:
        return detail["image-tag"]
    info = detail.get("additional-information", {})
    for var in info.get("environment", {}).get("environment-variables", []):
        if var.get("name") == "IMAGE_TAG":
            return var["value"]
    raise ValueError("no image tag in the event")


def verified_digest(tag):
    """The registry and digest both `tag` and `latest` name, in one DescribeImages."""
    images = ecr.describe_images(
        repositoryName=REPOSITORY,
        imageIds=[{"imageTag": tag}, {"imageTag": "latest"}],
    )["imageDetails"]
    digests = {image["imageDigest"] for image in images}
    tags = {t for image in images for t in image.get("imageTags", [])}
    if len(digests) != 1 or not {tag, "latest"} <= tags:
        raise RuntimeError(f"{tag} and latest do not name one image: {sorted(digests)}")
    return images[0]["registryId"], digests.pop()


def roll(service, image):
    """Registers the service's task definition with `image` in CONTAINER and rolls to it."""
    described = ecs.describe_services(cluster=CLUSTER, services=[service])["services"][0]
    definition = ecs.describe_task_definition(taskDefinition=described["taskDefinition"])[
        "taskDefinition"
    ]
    request = {k: definition[k] for k in REGISTER_FIELDS if k in definition}
    for container in request["containerDefinitions"]:
        if container["name"] == CONTAINER:
            container["image"] = image
    registered = ecs.register_task_definition(**request)["taskDefinition"]
    ecs.update_service(
        cluster=CLUSTER,
        service=service,
        taskDefinition=registered["taskDefinitionArn"],
    )
    return registered["taskDefinitionArn"]


def handler(event, context):
    tag = image_tag(event)
    registry, digest = verified_digest(tag)
    region = os.environ["AWS_REGION"]
    image = f"{registry}.dkr.ecr.{region}.amazonaws.com/{REPOSITORY}@{digest}"
    rolled = {service: roll(service, image) for service in SERVICES}
    return {"tag": tag, "digest": digest, "rolled": rolled}
