"""Exit codes of the node commands, named (``man iscsiadm``, open-iscsi 2.1.8).

os-brick spells these as bare numbers in ``check_exit_code`` lists; we name them so a
reader sees *why* a code is accepted.
"""

from __future__ import annotations

ISCSI_OK = 0
ISCSI_ERR = 1  #: generic error
ISCSI_ERR_TRANS = 4  #: connection / transport problem (portal unreachable)
ISCSI_ERR_DB_FAILURE = 6  #: node database failure (record not found on update)
ISCSI_ERR_TRANS_TIMEOUT = 8  #: connect timed out
ISCSI_ERR_TRANS_NOT_FOUND = 12  #: transport module not loaded
ISCSI_ERR_SESS_EXISTS = 15  #: already logged in: success for an idempotent login
ISCSI_ERR_FATAL_LOGIN = 19  #: non-retryable login failure (initiator not in the ACL)
ISCSI_ERR_ISCSID_NOTCONN = 20  #: cannot connect to iscsid
ISCSI_ERR_NO_OBJS_FOUND = 21  #: no records / sessions: "nothing there" (success for detach)
ISCSI_ERR_LOGIN_AUTH_FAILED = 24  #: CHAP rejected
ISCSI_ERR_AGAIN = 29  #: try again

#: Codes meaning "this portal cannot be reached": the path fails, other portals may work.
UNREACHABLE = frozenset({ISCSI_ERR_TRANS, ISCSI_ERR_TRANS_TIMEOUT})

MEANINGS: dict[int, str] = {
    ISCSI_ERR: "iscsiadm error",
    ISCSI_ERR_TRANS: "portal unreachable",
    ISCSI_ERR_DB_FAILURE: "iSCSI node database failure",
    ISCSI_ERR_TRANS_TIMEOUT: "connection to the portal timed out",
    ISCSI_ERR_TRANS_NOT_FOUND: "the iscsi_tcp transport is not loaded on this node",
    ISCSI_ERR_SESS_EXISTS: "session already exists",
    ISCSI_ERR_FATAL_LOGIN: "login rejected: is this initiator in the volume's ACL?",
    ISCSI_ERR_ISCSID_NOTCONN: "cannot connect to iscsid: is it running on the node?",
    ISCSI_ERR_NO_OBJS_FOUND: "no records or sessions found",
    ISCSI_ERR_LOGIN_AUTH_FAILED: "CHAP authentication failed: check the CHAP user and secret",
    ISCSI_ERR_AGAIN: "iscsiadm asks to try again",
}

#: ``blkid -p``: 0 = a signature was found, 2 = nothing found (the device is blank).
BLKID_FOUND = 0
BLKID_NOTHING = 2
