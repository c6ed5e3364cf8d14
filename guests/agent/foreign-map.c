/* rig-foreign-map: map one granted page into dom0 the way a backend maps a guest's page,
 * and say at which physical address the mapping landed.
 *
 * dom0 grants itself a page (gntalloc), writes a pattern into it, then maps that grant
 * through gntdev, which takes the page frame to map it at from the kernel's
 * unpopulated-page allocator ("Xen scratch" in /proc/iomem, on Arm inside Xen's extended
 * regions) or, without one, from ballooned-out RAM. /proc/self/pagemap gives the frame.
 * The pattern must read back both ways (written through the grant, read through the
 * mapping; written through the mapping, read through the grant), the mapping's frame must
 * not be the granted page's own, and the mapping must come down cleanly before anything
 * is printed. The rig reads one line on stdout (rig/parse/foreign_map.py):
 *   mapped ref=REF pfn=0xPFN addr=0xADDR page=BYTES granted=0xPFN pattern=ok|mismatch
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

/* The page frame behind a virtual address of ours (0: not present, or hidden from us). */
static uint64_t frame(int pagemap, void *addr, long page)
{
	uint64_t entry;
	if (pread(pagemap, &entry, sizeof(entry), (off_t)((uintptr_t)addr / page) * sizeof(entry)) != sizeof(entry))
		return 0;
	return (entry & (1ULL << 63)) ? entry & ((1ULL << 55) - 1) : 0;
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
	size_t n = strlen(pattern) + 1;
	int same = memcmp(mapped, pattern, n) == 0;
	((volatile char *)mapped)[0] = 'R';   /* and back: the mapping's write shows in the granted page */
	same = same && ((volatile char *)granted)[0] == 'R';

	int pm = open("/proc/self/pagemap", O_RDONLY);
	if (pm < 0)
		return fail("open-pagemap");
	uint64_t pfn = frame(pm, mapped, page), granted_pfn = frame(pm, granted, page);
	if (pfn == 0 || granted_pfn == 0) {
		errno = EFAULT;
		return fail("pagemap");
	}

	/* Down again before saying anything: a teardown that fails is no clean mapping. */
	struct ioctl_gntdev_unmap_grant_ref unmap = { .index = map.index, .count = 1 };
	if (munmap(mapped, page) < 0)
		return fail("gntdev-munmap");
	if (ioctl(gd, IOCTL_GNTDEV_UNMAP_GRANT_REF, &unmap) < 0)
		return fail("gntdev-unmap");
	struct ioctl_gntalloc_dealloc_gref dealloc = { .index = alloc.index, .count = 1 };
	if (munmap(granted, page) < 0 || ioctl(ga, IOCTL_GNTALLOC_DEALLOC_GREF, &dealloc) < 0)
		return fail("gntalloc-dealloc");
	printf("mapped ref=%u pfn=%#llx addr=%#llx page=%ld granted=%#llx pattern=%s\n", alloc.gref_ids[0],
	       (unsigned long long)pfn, (unsigned long long)pfn * page, page, (unsigned long long)granted_pfn,
	       same ? "ok" : "mismatch");
	return 0;
}
