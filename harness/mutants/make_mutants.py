#!/usr/bin/python3
"""Regenerates the planted-bug patches in this folder from exact edits of the
engine source (run it after an engine change makes a patch stop applying;
review the diff).  Each mutant: name, description, the edits, the pcsweep
arguments that kill it, the invariants expected, and for equivalent
mutants the reason the sweep cannot kill them."""
import os, subprocess, json, shutil, tempfile
ROOT=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT=ROOT+'/harness/mutants'
M=[]
NOTES={}
def mutant(name, desc, path, old, new, sweep, expect, count=1, extra=(), equivalent=None):
    M.append((name, desc, [(path, old, new)] + list(extra), sweep, expect))
    if equivalent:
        NOTES[name]=equivalent

mutant('no-flush-before-apply',
 'The log writer applies an entry without flushing it first: the entry and its final-place updates (and the header that names the new LogGuid) may reach the disk in any order.',
 'engine/src/log_write.c',
 """    rc = ring_write(h, w->head, w->entry_buf, size);
    if (rc == 0)
        rc = vhdx_flush_dev(h);
    if (rc != 0)
        return rc;""",
 """    rc = ring_write(h, w->head, w->entry_buf, size);
    if (rc != 0)
        return rc;""",
 ['--scenario','overwrite','--models','reorder'], ['open-refused','data:acked-data-lost','check-failed'])

mutant('apply-before-entry',
 'Final-place updates are written before the log entry that describes them (write-ahead order inverted).',
 'engine/src/log_write.c',
 """    vhdx_log_entry_build(&p, pages, n, w->entry_buf);
    rc = ring_write(h, w->head, w->entry_buf, size);""",
 """    vhdx_log_entry_build(&p, pages, n, w->entry_buf);
    for (size_t k = 0; k < n; k++) {
        rc = vhdx_io_write(h->dev, pages[k].data, VHDX_LOG_SECTOR, pages[k].file_offset);
        if (rc != 0)
            return rc;
    }
    rc = ring_write(h, w->head, w->entry_buf, size);""",
 ['--scenario','batch','--models','prefix,reorder,torn'], ['data:acked-data-lost','data:garbage','check-failed','open-refused'], equivalent='Each BAT update is an independent 8-byte entry and block data is flushed before any BAT change, so applying a page early can only expose values the oracle already allows for in-flight writes; no power-loss state of this writer tells it apart. Fuzzing of hand-built logs and multi-page metadata would.')

mutant('wrong-tail',
 'Every entry names itself as the Tail, even while earlier entries of the batch are not yet applied: replay forgets them.',
 'engine/src/log_write.c',
 """    uint32_t tail = w->unapplied > 0 ? w->seq_start : w->head;""",
 """    uint32_t tail = w->head;""",
 ['--scenario','batch','--models','drop,prefix'], ['data:acked-data-lost','check-failed'])

mutant('ring-wrap-off-by-one',
 'Writing an entry across the end of the ring, the part before the wrap is one sector short and the rest starts one sector late.',
 'engine/src/log_write.c',
 """    size_t first = (uint64_t)pos + len > L ? L - pos : len;""",
 """    size_t first = (uint64_t)pos + len > L ? L - pos - VHDX_LOG_SECTOR : len;""",
 ['--scenario','batch','--models','drop,prefix'], ['open-refused','data:acked-data-lost','check-failed','data:garbage'])

mutant('accept-foreign-logguid',
 'The search accepts entries whose LogGuid differs from the header\'s, so stale entries of older sessions are replayed.',
 'engine/src/log_entry.c',
 """    if (!vhdx_guid_equal(&hdr->log_guid, guid))
        return VHDX_E_LOG_GUID;""",
 """    (void)guid;""",
 ['--scenario','reopen','--models','drop,prefix'], ['data:acked-data-lost','open-refused','check-failed','data:garbage'],
 extra=[('engine/src/log_search.c', '''        if (hrc == 0 && !vhdx_guid_equal(&s.hdr[i].log_guid, &ring->log_guid))
            hrc = VHDX_E_LOG_GUID;''', '''        /* LogGuid not compared */''')])

mutant('accept-bad-crc',
 'Log entries are accepted without checking their CRC-32C: a torn entry is replayed.',
 'engine/src/log_entry.c',
 """    if (c != hdr->checksum)
        return VHDX_E_LOG_CRC;""",
 """    (void)c;""",
 ['--scenario','batch','--models','torn'], ['data:acked-data-lost','check-failed','open-refused','data:garbage','data:misplaced-data'])

mutant('lose-trailing-bytes',
 'Replay restores a data sector\'s leading 8 bytes but not its trailing 4 (the last 4 bytes of every logged page are zero after replay).',
 'engine/src/format.c',
 """    memcpy(update + 8, sector + 8, 4084);
    vhdx_put32(update + 4092, desc->trailing);""",
 """    memcpy(update + 8, sector + 8, 4084);
    vhdx_put32(update + 4092, 0);""",
 ['--scenario','wide','--models','drop'], ['check-failed','data:acked-data-lost','open-refused'])

mutant('clear-logguid-early',
 'Close applies the pending entries but clears the LogGuid without flushing the applied pages first.',
 'engine/src/log_write.c',
 """int vhdx_log_finish(struct vhdx *h)
{
    struct vhdx_log_writer *w = &h->log;
    int rc = vhdx_log_apply(h);""",
 """int vhdx_log_finish(struct vhdx *h)
{
    struct vhdx_log_writer *w = &h->log;
    int rc = 0;
    for (size_t i = 0; i < w->n_pending && rc == 0; i++)
        rc = vhdx_io_write(h->dev, w->pending[i].data, VHDX_LOG_SECTOR, w->pending[i].offset);
    w->n_pending = 0;""",
 ['--scenario','reopen','--models','reorder'], ['data:acked-data-lost','check-failed'])

mutant('any-first-sequence',
 'Following links from the Tail, the first step accepts any sequence number, so an unrelated older entry can head the chain.',
 'engine/src/log_search.c',
 """        uint32_t q = next_pos(s, p);
        if (!s->is_loge[q] || s->hdr[q].sequence != s->hdr[p].sequence + 1)
            return 0;""",
 """        uint32_t q = next_pos(s, p);
        if (!s->is_loge[q] || (k > 1 && s->hdr[q].sequence != s->hdr[p].sequence + 1))
            return 0;""",
 ['--scenario','batch','--models','misdirect,lost'], ['data:acked-data-lost','data:garbage','check-failed','data:foreign-data'], equivalent='For this writer the Tail position always holds its entry once the head is durable (the ring never overwrites the last durable sequence), so the first link is always consecutive in every crash state. Corrupted or hand-built logs (fuzzing) exercise it.')

mutant('replay-no-extend',
 'Replay extends the file only to sizes that are not a multiple of 1 MiB: never to LastFileOffset, only past a zero descriptor ending off a MiB boundary.',
 'engine/src/log_replay.c',
 """    if (size < want) {
        rc = vhdx_io_truncate(dev, want);""",
 """    if (size < want && want % (1u << 20) != 0) {
        rc = vhdx_io_truncate(dev, want);""",
 ['--scenario','fill','--models','lost'], ['check-failed','open-refused','data:acked-data-lost'], equivalent="This writer makes every file extension durable before it logs the BAT change, so no crash state has a file shorter than the head's LastFileOffset and the extension step never runs. Logs from other writers (fuzz_log_replay's hand-built logs, QEMU traces) exercise it.")

mutant('header-copies-one-flush',
 'A header update writes both header copies and then flushes once, so a torn or reordered write can damage both.',
 'engine/src/image.c',
 """        rc = vhdx_io_write(h->dev, buf, sizeof buf, slot_offset[slot]);
        if (rc == 0)
            rc = vhdx_flush_dev(h); /* also makes the current file size known-durable */""",
 """        rc = vhdx_io_write(h->dev, buf, sizeof buf, slot_offset[slot]);
        if (rc == 0 && copy == 1)
            rc = vhdx_flush_dev(h); /* also makes the current file size known-durable */""",
 ['--scenario','overwrite','--models','torn'], ['open-refused'], equivalent="Every header field lives in the header's first 512-byte sector, so with sector-atomic writes a copy is always wholly old or wholly new and one flush for both copies cannot leave both invalid. It matters only on media that tear inside a 512-byte sector, which the crash models do not simulate.")

mutant('replay-reverse-order',
 'Replay applies the entries of the active sequence from head to tail, so older updates overwrite newer ones.',
 'engine/src/log_replay.c',
 """    for (uint32_t k = 0; k < seq->count; k++) {
        struct vhdx_log_header hdr;
        /* One read per entry""",
 """    for (uint32_t kk = seq->count; kk-- > 0;) {
        uint32_t k = kk;
        struct vhdx_log_header hdr;
        /* One read per entry""",
 ['--scenario','batch','--models','drop,prefix'], ['data:acked-data-lost','check-failed','open-refused'])

mutant('no-flush-after-apply',
 'Applying a batch writes the pages to their final places but does not flush before the log space is reused.',
 'engine/src/log_write.c',
 """    int rc = vhdx_flush_dev(h);
    if (rc != 0)
        return rc;
    vhdx_io_mark(h->dev, "log.applied", w->next_seq - 1);""",
 """    int rc = 0;
    vhdx_io_mark(h->dev, "log.applied", w->next_seq - 1);""",
 ['--scenario','batch','--models','reorder'], ['data:acked-data-lost','check-failed'])

mutant('no-data-flush-before-log',
 'A write into a new block logs the BAT change without first flushing the block\'s data and the file extension.',
 'engine/src/vdisk.c',
 """    if (ps.n) {
        rc = vhdx_flush_dev(h);
        if (rc)
            h->poison = rc;
        else
            rc = commit_bat_pages(h, &ps);
    }""",
 """    if (ps.n)
        rc = commit_bat_pages(h, &ps);""",
 ['--scenario','fill','--models','stale'], ['data:garbage'])

mutant('ring-head-no-wrap',
 'The ring position advances without wrapping at the log length, so entries run past the log into the metadata region.',
 'engine/src/log_write.c',
 """    w->head = (uint32_t)((w->head + size) % L);""",
 """    w->head = (uint32_t)(w->head + size);""",
 ['--scenario','fill','--models','drop'], ['open-refused','check-failed','workload-failed'])

mutant('header-first-log-guid',
 'Starting a log, the header is updated to the new LogGuid before the first entry is written (the order QEMU uses), leaving a window where the header names a log with no valid sequence.',
 'engine/src/log_write.c',
 """    vhdx_log_entry_build(&p, pages, n, w->entry_buf);
    rc = ring_write(h, w->head, w->entry_buf, size);""",
 """    if (!w->started) {
        rc = vhdx_header_update(h, HDR_SET_LOG_GUID, &w->guid);
        if (rc != 0)
            return rc;
        w->started = 1;
    }
    vhdx_log_entry_build(&p, pages, n, w->entry_buf);
    rc = ring_write(h, w->head, w->entry_buf, size);""",
 ['--scenario','overwrite','--models','prefix,drop'], ['open-refused'])

mutant('replay-skips-head',
 'Replay stops one entry short: the head entry of a sequence of several entries is never replayed.',
 'engine/src/log_replay.c',
 """    for (uint32_t k = 0; k < seq->count; k++) {
        struct vhdx_log_header hdr;
        /* One read per entry""",
 """    for (uint32_t k = 0; k < seq->count; k++) {
        if (k + 1 == seq->count && seq->count > 1)
            break; /* BUG: the head entry is skipped */
        struct vhdx_log_header hdr;
        /* One read per entry""",
 ['--scenario','batch','--models','drop,prefix'], ['data:acked-data-lost','check-failed','open-refused'])

mutant('discard-not-logged',
 'Discard moves whole blocks to the ZERO state in memory only; the BAT change never reaches the log.',
 'engine/src/vdisk.c',
 """    rc = commit_bat_pages(h, &ps);
    free(ps.idx);
    return err ? err : rc;""",
 """    rc = 0;
    free(ps.idx);
    return err ? err : rc;""",
 ['--scenario','discard','--models','drop'], ['data:acked-data-lost'])

mutant('flush-not-durable',
 'vhdx_flush records the file as durable without flushing the device, so acknowledged in-place writes can be lost.',
 'engine/src/vdisk.c',
 """    rc = vhdx_flush_dev(h);
    if (rc) {
        h->poison = rc; /* what is durable is now unknown */
        return rc;
    }""",
 """    h->durable_size = h->file_size;
    rc = 0;""",
 ['--scenario','overwrite','--models','drop'], ['data:acked-data-lost'])

os.makedirs(OUT, exist_ok=True)
for name, desc, edits, sweep, expect in M:
    d=tempfile.mkdtemp()
    for path, old, new in edits:
        src=open(os.path.join(ROOT,path)).read() if not os.path.exists(os.path.join(d,'b',path)) else open(os.path.join(d,'b',path)).read()
        orig=open(os.path.join(ROOT,path)).read()
        assert src.count(old)==1, (name, path, src.count(old))
        for side in 'ab':
            os.makedirs(os.path.join(d,side,os.path.dirname(path)),exist_ok=True)
        open(os.path.join(d,'a',path),'w').write(orig)
        open(os.path.join(d,'b',path),'w').write(src.replace(old,new,1))
    p=subprocess.run(['diff','-ruN','a','b'],cwd=d,stdout=subprocess.PIPE,text=True).stdout
    shutil.rmtree(d)
    open(os.path.join(OUT,name+'.patch'),'w').write(p)
    meta={'name':name,'description':desc,'sweep':sweep,'expect':expect,'sweep_kills':name not in NOTES}
    if name in NOTES:
        meta['why_the_sweep_cannot_kill_it']=NOTES[name]
    json.dump(meta,open(os.path.join(OUT,name+'.json'),'w'),indent=2)
    print(name, 'ok')
