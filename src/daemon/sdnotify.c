/* sdnotify.c - see sdnotify.h. */
#include "daemon/sdnotify.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>

static uv_timer_t sdn_timer;
static bool sdn_timer_on;

static void sdn_send(const char *msg)
{
	int rc = sd_notify(0, msg);

	if (rc < 0)
		log_warn("systemd notification failed: %s", strerror(-rc));
}

void sdn_ready(const char *status)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s\nMAINPID=%ld", status, (long)getpid());
	sdn_send(msg);
}

void sdn_status(const char *status)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "STATUS=%s", status);
	sdn_send(msg);
}

void sdn_reloading(void)
{
	sdn_send("RELOADING=1");
}

void sdn_stopping(void)
{
	sdn_send("STOPPING=1");
}

static void sdn_feed(uv_timer_t *t)
{
	sd_notify(0, "WATCHDOG=1");
}

int sdn_watchdog_start(uv_loop_t *loop)
{
	uint64_t usec = 0;
	int rc = sd_watchdog_enabled(0, &usec);

	if (rc <= 0)
		return rc;
	/* Twice per interval, as sd_watchdog_enabled(3) advises. */
	uint64_t ms = usec / 2000 ? usec / 2000 : 1;
	uv_timer_init(loop, &sdn_timer);
	uv_timer_start(&sdn_timer, sdn_feed, ms, ms);
	uv_unref((uv_handle_t *)&sdn_timer);
	sdn_timer_on = true;
	log_info("systemd watchdog: fed every %llu ms", (unsigned long long)ms);
	return 0;
}

void sdn_watchdog_stop(void)
{
	if (!sdn_timer_on)
		return;
	sdn_timer_on = false;
	uv_close((uv_handle_t *)&sdn_timer, NULL);
}

int sdn_available(void)
{
	return 1;
}

#else /* !HAVE_LIBSYSTEMD */

void sdn_ready(const char *status) { (void)status; }
void sdn_status(const char *status) { (void)status; }
void sdn_reloading(void) {}
void sdn_stopping(void) {}
int sdn_watchdog_start(uv_loop_t *loop) { (void)loop; return 0; }
void sdn_watchdog_stop(void) {}
int sdn_available(void) { return 0; }

#endif
