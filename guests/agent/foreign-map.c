/* rig-foreign-map: map one granted page into dom0 the way a backend maps a guest's page,
 * and say at which physical address the mapping landed.
 *
 * dom0 grants itself a page (gntalloc), writes a pattern into it, then maps that grant
 * through gntdev, which takes the page frame to map it at from the kernel's
 * unpopulated-page allocator ("Xen scratch" in /proc/iomem, on Arm inside Xen's extended
 * regions) or, without one, from ballooned-out RAM. /proc/self/pagemap gives the frame.
 * The rig reads one line on stdout (rig/parse/foreign_map.py):
 *   mapped ref=REF pfn=0xPFN addr=0xADDR page=BYTES pattern=ok|mismatch
 *   failed step=STEP errno=N (TEXT)
 * The agent runs it before /proc/iomem and dmesg are read, so both show what it made.
 * No libxen: the kernel's own uapi headers (linux-libc-dev), built static per architecture.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xen/gntalloc.h>
/* gntdev.h's copy-grant structs use Xen's own typedefs, which no uapi header defines */
typedef uint32_t grant_ref_t;
typedef uint16_t domid_t;
#include <xen/gntdev.h>

static int fail(const char *step)
{
	int err = errno;
	printf("failed step=%s errno=%d (%s)\n", step, err, strerror(err));
	return 1;
}

int main(void)
{
	long page = sysconf(_SC_PAGESIZE);
	char pattern[64];
	snprintf(pattern, sizeof(pattern), "rig foreign map %ld", (long)getpid());

	int ga = open("/dev/xen/gntalloc", O_RDWR);
	if (ga < 0)
		return fail("open-gntalloc");
	struct ioctl_gntalloc_alloc_gref alloc = { .domid = 0, .flags = GNTALLOC_FLAG_WRITABLE, .count = 1 };
	if (ioctl(ga, IOCTL_GNTALLOC_ALLOC_GREF, &alloc) < 0)
		return fail("gntalloc");
	char *granted = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, ga, alloc.index);
	if (granted == MAP_FAILED)
		return fail("gntalloc-mmap");
	strcpy(granted, pattern);

	int gd = open("/dev/xen/gntdev", O_RDWR);
	if (gd < 0)
		return fail("open-gntdev");
	struct ioctl_gntdev_map_grant_ref map = { .count = 1 };
	map.refs[0].domid = 0;
	map.refs[0].ref = alloc.gref_ids[0];
	if (ioctl(gd, IOCTL_GNTDEV_MAP_GRANT_REF, &map) < 0)   /* takes the frame to map at */
		return fail("gntdev-map");
	char *mapped = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, gd, map.index);   /* maps it */
	if (mapped == MAP_FAILED)
		return fail("gntdev-mmap");
	int same = strcmp(mapped, pattern) == 0;

	int pm = open("/proc/self/pagemap", O_RDONLY);
	if (pm < 0)
		return fail("open-pagemap");
	uint64_t entry;
	if (pread(pm, &entry, sizeof(entry), (off_t)((uintptr_t)mapped / page) * sizeof(entry)) != sizeof(entry))
		return fail("pagemap");
	uint64_t pfn = entry & ((1ULL << 55) - 1);
	if (!(entry & (1ULL << 63)) || pfn == 0) {   /* not present, or the frame hidden from us */
		errno = EFAULT;
		return fail("pagemap-frame");
	}
	printf("mapped ref=%u pfn=%#llx addr=%#llx page=%ld pattern=%s\n", alloc.gref_ids[0],
	       (unsigned long long)pfn, (unsigned long long)pfn * page, page, same ? "ok" : "mismatch");
	return 0;
}
