/*
 * priv.c - capabilities and NoNewPrivs (what and why in priv.h).
 *
 * The process-wide drop uses libcap-ng (Debian's libcap-ng0): it knows the
 * kernel's capability versions and the bounding set.  The per-request
 * toggle of CAP_SYS_RESOURCE runs on pool threads for every NFS request,
 * so it is two raw capget/capset syscalls on the calling thread instead of
 * libcap-ng's per-thread state and /proc parsing.
 */
#include "priv.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <cap-ng.h>

int priv_drop(bool manage_vips, char *why, size_t whysz)
{
	static const int keep[] = { CAP_NET_BIND_SERVICE, CAP_DAC_READ_SEARCH, CAP_DAC_OVERRIDE,
				    CAP_FOWNER, CAP_CHOWN, CAP_FSETID, CAP_MKNOD, CAP_SETUID,
				    CAP_SETGID, CAP_SYS_RESOURCE, CAP_NET_ADMIN,
				    CAP_NET_RAW };
	const size_t nkeep = sizeof(keep) / sizeof(keep[0]) - (manage_vips ? 0 : 2);
	const capng_type_t all = CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET;
	bool had[sizeof(keep) / sizeof(keep[0])];
	int rc;

	snprintf(why, whysz, "ok");
	if (geteuid() != 0)
		return 0;
	/* Keep only what we were given: a container may withhold some (e.g.
	 * CAP_SYS_RESOURCE), and capset refuses to add to the permitted set. */
	if (capng_get_caps_process() != 0) {
		snprintf(why, whysz, "cannot read the process's capabilities");
		return -EPERM;
	}
	for (size_t i = 0; i < nkeep; i++)
		had[i] = capng_have_capability(CAPNG_PERMITTED, (unsigned)keep[i]);
	capng_clear(CAPNG_SELECT_BOTH);
	for (size_t i = 0; i < nkeep; i++) {
		if (had[i] && capng_update(CAPNG_ADD, all, (unsigned)keep[i]) != 0) {
			snprintf(why, whysz, "capng_update failed");
			return -EINVAL;
		}
	}
	rc = capng_apply(CAPNG_SELECT_BOTH);
	if (rc != 0) {
		snprintf(why, whysz, "capng_apply failed (%d)", rc);
		return -EPERM;
	}
	/* No exec'd helper may ever gain what we gave up (setuid binaries,
	 * file capabilities). */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		rc = -errno;
		snprintf(why, whysz, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		return rc;
	}
	return 0;
}

int priv_resource(bool on)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	const unsigned idx = CAP_TO_INDEX(CAP_SYS_RESOURCE);
	const unsigned bit = CAP_TO_MASK(CAP_SYS_RESOURCE);

	if (syscall(SYS_capget, &hdr, data) < 0)
		return -errno;
	if (on) {
		if (!(data[idx].permitted & bit) || (data[idx].effective & bit))
			return 0;
		data[idx].effective |= bit;
	} else {
		if (!(data[idx].effective & bit))
			return 0;
		data[idx].effective &= ~bit;
	}
	return syscall(SYS_capset, &hdr, data) < 0 ? -errno : 0;
}
