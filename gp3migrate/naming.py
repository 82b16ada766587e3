"""Kubernetes and AWS name rules, as predicates that return why a name is refused."""

import re

# Kubernetes object names (PVC, PV, StorageClass, VolumeSnapshot*): DNS-1123 subdomain, at most 253.
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Namespaces: DNS-1123 label, at most 63.
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# EKS cluster names (CreateCluster API): 1-100 characters, starting alphanumeric.
_EKS_CLUSTER = re.compile(r"^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
# KMS key ARNs (not aliases): what EBS reports as a volume's KmsKeyId.
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
_VOLUME_ID = re.compile(r"^vol-([0-9a-f]{8}|[0-9a-f]{17})$")


def dns1123_subdomain_problem(value: str) -> str | None:
    if len(value) > 253:
        return f"is {len(value)} characters; a Kubernetes name has at most 253"
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        return "is not a DNS-1123 name (lower-case letters, digits, '-' and '.', alphanumeric at both ends)"
    return None


def dns1123_label_problem(value: str) -> str | None:
    if len(value) > 63:
        return f"is {len(value)} characters; a namespace has at most 63"
    if not _DNS1123_LABEL.fullmatch(value):
        return "is not a DNS-1123 label (lower-case letters, digits and '-', alphanumeric at both ends)"
    return None


def eks_cluster_name_problem(value: str) -> str | None:
    if not _EKS_CLUSTER.fullmatch(value):
        return "is not an EKS cluster name (1-100 letters, digits, '-' or '_', starting alphanumeric)"
    return None


def region_problem(value: str) -> str | None:
    if not _REGION.fullmatch(value):
        return "is not an AWS region code such as eu-central-1"
    return None


def volume_id_problem(value: str) -> str | None:
    if not _VOLUME_ID.fullmatch(value):
        return "is not an EBS volume id (vol- followed by 8 or 17 hex digits)"
    return None


def zone_problem(zone: str, region: str) -> str | None:
    # Zone names are the region plus one letter (eu-central-1c); local zones add a suffix.
    if not zone.startswith(region) or not re.fullmatch(r"[a-z](-[a-z0-9-]+)?", zone[len(region) :]):
        return f"is not an availability zone of region {region} (e.g. {region}a)"
    return None


def kms_key_arn_problem(value: str) -> str | None:
    if not _KMS_KEY_ARN.fullmatch(value):
        return "is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)"
    return None
