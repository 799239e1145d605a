/*
 * mountinfo.c - one pass over /proc/self/mountinfo; later lines are
 * mounts stacked on top of earlier ones, so the last match wins.
 */
#include "mountinfo.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MOUNTINFO "/proc/self/mountinfo"

/* Undo mountinfo's octal escapes (\040 for space, ...) in place. */
static void mi_unescape(char *s)
{
	char *d = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 +
				      (s[3] - '0'));
			s += 3;
		} else {
			*d++ = *s;
		}
	}
	*d = '\0';
}

/* If line describes a mount on path, fill *out.  Fields: mount ID,
 * parent ID, major:minor, root, mount point, options, optional fields,
 * "-", type, source, super options. */
static bool mi_match(char *line, const char *path, struct mountinfo_entry *out)
{
	char *save = NULL, *dev, *mp, *sep, *fstype, *source;

	if (!strtok_r(line, " ", &save) || !strtok_r(NULL, " ", &save))
		return false;
	dev = strtok_r(NULL, " ", &save);
	if (!dev || !strtok_r(NULL, " ", &save))
		return false;
	mp = strtok_r(NULL, " ", &save);
	sep = save ? strstr(save, " - ") : NULL;
	if (!mp || !sep)
		return false;
	mi_unescape(mp);
	if (strcmp(mp, path) != 0)
		return false;
	fstype = strtok_r(sep + 3, " ", &save);
	source = fstype ? strtok_r(NULL, " ", &save) : NULL;
	if (source)
		mi_unescape(source);
	snprintf(out->fstype, sizeof(out->fstype), "%s", fstype ? fstype : "?");
	snprintf(out->source, sizeof(out->source), "%s", source ? source : "?");
	snprintf(out->dev, sizeof(out->dev), "%s", dev);
	return true;
}

int mountinfo_find(const char *path, struct mountinfo_entry *out)
{
	FILE *f = fopen(MOUNTINFO, "re");
	char *line = NULL;
	size_t cap = 0;
	int r = -ENOENT;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		line[strcspn(line, "\n")] = '\0';
		if (mi_match(line, path, out))
			r = 0;
	}
	free(line);
	fclose(f);
	return r;
}
