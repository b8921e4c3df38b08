#!/usr/bin/env python3
"""rum-leaf-fix.py IN OUT: Debian 12's rum.so (postgresql-15-rum 1.3.13-1+deb12u1,
checked by its SHA-256) with the posting-tree root-split crash fixed, as OUT.

RUM 1.3.13's scanPage() (src/rumget.c) reads the page a scan keeps pinned
as a posting-tree *leaf*.  That page is the posting tree's root while the
tree has one page; when a concurrent insert splits the root, the root
stays at its block but becomes an internal page, and scanPage() then
decodes its PostingItems as compressed leaf items and crashes in
rumDataPageLeafRead (upstream issue #144, fixed in rum 1.3.15 by commit
78c348b "Fix corruption when entry->buffer changed to nonleaf while
unlocked").  The patch adds that check at the top of scanPage():

    if (!RumPageIsLeaf(page)) return false;

Its callers then do the right thing: entryGetNextItem() finds the old root
right- and leftmost and ends the entry (the items it has not seen were
inserted after the scan read the page: invisible to its snapshot, and for
an exclusion check the later inserter's own check sees this one's entry);
entryFindItem() re-descends from the root with rumReFindLeafPage().

How: the 14 bytes at 0x1ffd9 (cmpl $1,0x8c(%r15); je 0x202c0: the test of
the scan's direction after `rax = page's special area') become a jump to
a stub in the executable segment's padding after .fini (0x2d9d0, zeros in
the file; the segment's sizes are extended over it):

    testb $2,0xc(%rax)        ; RumPageOpaque(page)->flags & RUM_LEAF
    je    0x202a0             ; scanPage's own `return false'
    cmpl  $1,0x8c(%r15)       ; the two instructions replaced
    je    0x202c0
    jmp   0x1ffe7
"""
import hashlib, struct, sys

SHA256 = 'c8f4971372c40e3ff65ab314d94a4e6f755cc0cae581ea21b0bfc2b48fc84d24'
PATCH_AT, CAVE, RET_FALSE, FWD, BACK = 0x1ffd9, 0x2d9d0, 0x202a0, 0x202c0, 0x1ffe7
ORIG = bytes.fromhex('4183bf8c000000010f84d9020000')

src, dst = sys.argv[1], sys.argv[2]
b = bytearray(open(src, 'rb').read())
if hashlib.sha256(b).hexdigest() != SHA256:
    sys.exit('rum-leaf-fix: %s is not Debian 12\'s rum.so 1.3.13-1+deb12u1 (sha256 %s)'
             % (src, hashlib.sha256(b).hexdigest()))
assert b[PATCH_AT:PATCH_AT + 14] == ORIG
assert b[RET_FALSE:RET_FALSE + 4] == bytes.fromhex('31c0ebb5')  # xor eax,eax; jmp epilogue


def rel(frm_end, to):
    return struct.pack('<i', to - frm_end)


stub = bytearray()
stub += bytes.fromhex('f6400c02')                       # testb $0x2,0xc(%rax)
stub += b'\x0f\x84' + rel(CAVE + len(stub) + 6, RET_FALSE)
stub += bytes.fromhex('4183bf8c00000001')               # cmpl $0x1,0x8c(%r15)
stub += b'\x0f\x84' + rel(CAVE + len(stub) + 6, FWD)
stub += b'\xe9' + rel(CAVE + len(stub) + 5, BACK)
end = CAVE + len(stub)

# the executable PT_LOAD segment: offset == vaddr, ends before the cave,
# next segment's page after it
e_phoff, = struct.unpack_from('<Q', b, 0x20)
e_phentsize, e_phnum = struct.unpack_from('<HH', b, 0x36)
for i in range(e_phnum):
    o = e_phoff + i * e_phentsize
    p_type, p_flags, p_offset, p_vaddr, _, p_filesz, p_memsz, _ = struct.unpack_from('<IIQQQQQQ', b, o)
    if p_type == 1 and p_flags & 1:
        assert p_offset == p_vaddr and p_offset + p_filesz <= CAVE and end <= (CAVE | 0xfff) + 1
        struct.pack_into('<QQ', b, o + 32, end - p_offset, end - p_offset)
        break
else:
    sys.exit('rum-leaf-fix: no executable segment')
assert not any(b[CAVE:end])
b[CAVE:end] = stub
b[PATCH_AT:PATCH_AT + 14] = b'\xe9' + rel(PATCH_AT + 5, CAVE) + b'\x90' * 9
open(dst, 'wb').write(b)
