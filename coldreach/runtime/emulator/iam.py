"""IAM roles, their inline policies and their AWS managed policies."""

from __future__ import annotations

from coldreach.runtime.emulator.backend import MotoBackend, handles, updates
from coldreach.runtime.emulator.call import Call, NotHeld, Outputs, aws_tags, drop_none
from coldreach.runtime.model import Resource
from policies import tokens as t


@handles(t.IAM_ROLE)
def role(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    name = b.name(c)
    role = b.client("iam").create_role(
        **drop_none(
            {
                "RoleName": name,
                "AssumeRolePolicyDocument": c.get("assumeRolePolicy"),
                "Description": c.get("description"),
                "Path": c.get("path"),
                "Tags": aws_tags(c.get("tags")) or None,
            }
        )
    )["Role"]
    return name, {
        "arn": role["Arn"],
        "uniqueId": role["RoleId"],
        "createDate": str(role["CreateDate"]),
    }


@handles(t.IAM_ROLE_POLICY)
def role_policy(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    name = b.name(c)
    role = c.get("role")
    b.client("iam").put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=c.get("policy"))
    return f"{role}:{name}", {}


@handles(t.IAM_ATTACHMENT)
def role_policy_attachment(b: MotoBackend, c: Call) -> tuple[str, Outputs]:
    role, arn = c.get("role"), c.get("policyArn")
    iam = b.client("iam")
    try:
        iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    except iam.exceptions.NoSuchEntityException:
        # moto loads AWS's managed policies only on request (MOTO_IAM_LOAD_MANAGED_POLICIES);
        # without them the attachment is rendered, not deployed.
        raise NotHeld from None
    return f"{role}/{arn}", {}


@updates(t.IAM_ROLE_POLICY)
def role_policy_document(b: MotoBackend, c: Call, old: Resource) -> Outputs:
    """A new document replaces the old one under the same name (PutRolePolicy)."""
    c.refuse_other_changes(old, {"policy"})
    return role_policy(b, c)[1]
