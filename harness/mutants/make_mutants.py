#!/usr/bin/python3
"""Regenerates the planted-bug patches in this folder from exact edits of the
engine source (run it after an engine change makes a patch stop applying;
review the diff).  Each mutant: name, description, category, the state or
input that exposes it, the edits, the pcsweep arguments for `powercut
mutants`, the invariants expected, and what the sweep can say about it:

  sweep_kills=True (default)  the sweep kills it (CTest mutant.<name> proves it);
  sweep_equivalent=REASON     no crash state of this writer tells it apart; left
                              to the other methods (CTest expects the sweep to miss it);
  sweep_blind=REASON          today's sweep misses it although it is reachable in
                              principle: a blind spot of the harness (issue 10); no
                              CTest until a judge kills it (then make it sweep_kills);
  equivalent=REASON           no method can tell it apart from the correct engine;
                              `evaluate` reports it as equivalent and fails when any
                              method kills it (the reason was wrong).

Categories: reader, checksum-geometry, ordering, error-path, allocation,
discard, header-region-choice, writer.  docs/mutants.md lists them all with
the methods that kill each today."""
import os, subprocess, json, shutil, tempfile
ROOT=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT=ROOT+'/harness/mutants'
M=[]
def mutant(name, desc, path, old, new, sweep, expect, extra=(), sweep_equivalent=None, category=None, expose=None,
           sweep_blind=None, equivalent=None):
    meta={'name': name, 'description': desc, 'category': category, 'expose': expose, 'sweep': sweep,
          'expect': expect, 'sweep_kills': not (sweep_equivalent or sweep_blind or equivalent)}
    if sweep_equivalent:
        meta['why_the_sweep_cannot_kill_it']=sweep_equivalent
    if sweep_blind:
        meta['sweep_blind']=sweep_blind
    if equivalent:
        meta['equivalent']=equivalent
    M.append((meta, [(path, old, new)] + list(extra)))

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
 ['--scenario','batch','--models','prefix,reorder,torn'], ['data:acked-data-lost','data:garbage','check-failed','open-refused'], sweep_equivalent='Each BAT update is an independent 8-byte entry and block data is flushed before any BAT change, so applying a page early can only expose values the oracle already allows for in-flight writes; no power-loss state of this writer tells it apart. Fuzzing of hand-built logs and multi-page metadata would.')

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
 ['--scenario','batch','--models','misdirect,lost'], ['data:acked-data-lost','data:garbage','check-failed','data:foreign-data'], sweep_equivalent='For this writer the Tail position always holds its entry once the head is durable (the ring never overwrites the last durable sequence), so the first link is always consecutive in every crash state. Corrupted or hand-built logs (fuzzing) exercise it.')

mutant('replay-no-extend',
 'Replay extends the file only to sizes that are not a multiple of 1 MiB: never to LastFileOffset, only past a zero descriptor ending off a MiB boundary.',
 'engine/src/log_replay.c',
 """    if (size < want) {
        rc = vhdx_io_truncate(dev, want);""",
 """    if (size < want && want % (1u << 20) != 0) {
        rc = vhdx_io_truncate(dev, want);""",
 ['--scenario','fill','--models','lost'], ['check-failed','open-refused','data:acked-data-lost'], sweep_equivalent="This writer makes every file extension durable before it logs the BAT change, so no crash state has a file shorter than the head's LastFileOffset and the extension step never runs. Logs from other writers (fuzz_log_replay's hand-built logs, QEMU traces) exercise it.")

mutant('header-copies-one-flush',
 'A header update writes both header copies and then flushes once, so a torn or reordered write can damage both.',
 'engine/src/image.c',
 """        rc = vhdx_io_write(h->dev, buf, sizeof buf, slot_offset[slot]);
        if (rc == 0)
            rc = vhdx_flush_dev(h); /* also makes the current file size known-durable */""",
 """        rc = vhdx_io_write(h->dev, buf, sizeof buf, slot_offset[slot]);
        if (rc == 0 && copy == 1)
            rc = vhdx_flush_dev(h); /* also makes the current file size known-durable */""",
 ['--scenario','overwrite','--models','torn'], ['open-refused'], sweep_equivalent="Every header field lives in the header's first 512-byte sector, so with sector-atomic writes a copy is always wholly old or wholly new and one flush for both copies cannot leave both invalid. It matters only on media that tear inside a 512-byte sector, which the crash models do not simulate.")

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

# Category and exposing state of the first nineteen (each is killed or
# declared with the sweep arguments above).
for _meta, _e in M:
    _meta['category'], _meta['expose'] = {
        'no-flush-before-apply': ('ordering', 'overwrite scenario, reorder model: an entry and its applied pages in one flush epoch'),
        'apply-before-entry': ('ordering', 'protocol: a final-place BAT write issued before the flush that makes its entry durable'),
        'wrong-tail': ('writer', 'batch scenario, drop/prefix: a crash with several unapplied entries'),
        'ring-wrap-off-by-one': ('writer', 'batch scenario: an entry that straddles the end of the ring'),
        'accept-foreign-logguid': ('reader', 'reopen scenario: stale entries of an older session left in the ring'),
        'accept-bad-crc': ('reader', 'batch scenario, torn model: a torn log entry'),
        'lose-trailing-bytes': ('reader', 'wide scenario: any replayed data sector whose last 4 bytes are not zero'),
        'clear-logguid-early': ('ordering', 'reopen scenario, reorder model: the close epoch (applied pages and the LogGuid clear)'),
        'any-first-sequence': ('reader', 'hand-built log whose Tail entry is followed by an unrelated entry (fuzz_log_replay)'),
        'replay-no-extend': ('reader', 'a log from another writer whose LastFileOffset is past the end of the file'),
        'header-copies-one-flush': ('ordering', 'protocol: two header copies in one flush epoch; media tearing inside 512 bytes'),
        'replay-reverse-order': ('reader', 'batch scenario: a sequence of several entries updating the same page'),
        'no-flush-after-apply': ('ordering', 'batch scenario, reorder model: applied pages not durable when the ring is reused'),
        'no-data-flush-before-log': ('ordering', 'fill scenario, stale model: the BAT entry durable before the block data'),
        'ring-head-no-wrap': ('writer', 'fill scenario: the ring wraps'),
        'header-first-log-guid': ('ordering', 'overwrite scenario, prefix/drop: a cut between the header update and the first entry'),
        'replay-skips-head': ('reader', 'batch scenario: a sequence of several entries'),
        'discard-not-logged': ('discard', 'discard scenario, drop model: a whole-block discard then a cut'),
        'flush-not-durable': ('ordering', 'overwrite scenario, drop model: an acknowledged in-place write'),
    }.get(_meta['name'], (_meta.get('category'), _meta.get('expose')))

# ---- issue 10: planted bugs written without looking at the harness -------------------------------
# reader-side checks: log entry validation, sequence search, Tail, descriptors
mutant('desc-sequence-data-unchecked',
 'Entry validation compares the SequenceNumber of zero descriptors only; a data descriptor with another sequence number passes (its data sector\'s split sequence is checked instead).',
 'engine/src/log_entry.c',
 """        if (d.sequence != hdr->sequence)
            return VHDX_E_LOG_DESC_SEQUENCE;""",
 """        if (d.kind == VHDX_DESC_ZERO && d.sequence != hdr->sequence)
            return VHDX_E_LOG_DESC_SEQUENCE;""",
 ['--scenario','batch','--models','misdirect,lost'], [],
 category='reader', expose='a log entry with a valid CRC whose data descriptor carries another SequenceNumber (hand-built log: fuzz_log_parse/fuzz_log_replay against ref_log, reference judge)',
 sweep_blind='this writer always writes matching descriptor sequence numbers and the CRC covers the descriptors, so no crash or corruption state shows the gap')

mutant('data-sequence-high-unchecked',
 'A data sector\'s SequenceHigh field is not compared, only SequenceLow: a data sector of an entry 2^32 sequence numbers away is accepted.',
 'engine/src/format.c',
 """    if (vhdx_get32(sector + 4) != (uint32_t)(sequence >> 32) || vhdx_get32(sector + 4092) != (uint32_t)sequence)""",
 """    if (vhdx_get32(sector + 4092) != (uint32_t)sequence)""",
 ['--scenario','batch','--models','misdirect,lost'], [],
 category='reader', expose='a data sector with a wrong SequenceHigh under a valid entry CRC (hand-built log, fuzz_log_parse against ref_log)',
 sweep_blind='sequence numbers of this writer stay below 2^32 and the CRC covers the data sectors')

mutant('tail-lost-head-alone',
 'When the entry at a head\'s Tail is no longer valid, the search replays the head entry on its own instead of rejecting the sequence.',
 'engine/src/log_search.c',
 """    uint32_t p = s->hdr[h].tail / VHDX_LOG_SECTOR;
    uint32_t k = 0;""",
 """    uint32_t p = s->hdr[h].tail / VHDX_LOG_SECTOR;
    uint32_t k = 0;
    if (!s->is_loge[p] || validate_at(s, p) != 0)
        p = h; /* Tail entry already reused: the head still carries its own pages */""",
 ['--scenario','batch','--models','lost,misdirect,bitflip'], ['data:acked-data-lost','check-failed','open-refused'],
 category='reader', expose='a sequence of several unapplied entries whose Tail entry is lost or damaged (lost/bitflip models on the batch scenario): the reference refuses or rolls back, the engine replays a partial sequence',
 sweep_blind='under the corruption models a rollback to older values is allowed, so replaying a partial sequence is not a violation today; the reference judge would disagree on the active sequence')

mutant('search-gives-up-on-invalid-head',
 'The search stops at the first candidate with the greatest sequence number that fails full validation, instead of trying the next candidate: a torn newest entry makes the whole log unreadable.',
 'engine/src/log_search.c',
 """        if (v != 0)
            continue;
        int link = has_link(&s, h);""",
 """        if (v != 0)
            break;
        int link = has_link(&s, h);""",
 ['--scenario','fill','--models','torn'], ['open-refused'],
 category='reader', expose='a crash while an entry is being written whose header sector persisted but not the rest (fill scenario, torn model)')

mutant('ambiguous-heads-first-wins',
 'Two valid sequences whose heads have the same sequence number are not refused: the one at the lower ring offset is replayed.',
 'engine/src/log_search.c',
 """        if (have) {
            rc = VHDX_E_LOG_AMBIGUOUS;
            vhdx_log_sequence_free(seq);
            goto out;
        }""",
 """        if (have)
            continue; /* same sequence number: keep the first found */""",
 ['--scenario','batch','--models','misdirect'], [],
 category='reader', expose='a log holding two competing valid sequences with equal head sequence numbers (reference writer, fuzz_log_replay against ref_log)',
 sweep_blind='this writer never produces two valid heads with the same sequence number, and a misdirected copy of an entry never heads a valid sequence')

mutant('tail-bounds-off-by-one',
 'The Tail field is checked with > instead of >= against the log length (entry validation and the search): a Tail equal to LogLength indexes one past the ring.',
 'engine/src/log_entry.c',
 """    if (hdr->tail >= log_length)
        return VHDX_E_LOG_FIELD;""",
 """    if (hdr->tail > log_length)
        return VHDX_E_LOG_FIELD;""",
 ['--scenario','batch','--models','bitflip'], [],
 extra=[('engine/src/log_search.c', """        if (hrc == 0 && s.hdr[i].tail >= ring->log_length)""",
         """        if (hrc == 0 && s.hdr[i].tail > ring->log_length)""")],
 category='reader', expose='a log entry whose Tail equals LogLength (hand-built; fuzz_log_replay under ASan: read past the search arrays)',
 sweep_blind='the Tail field is covered by the entry CRC and this writer never writes such a value')

mutant('zero-desc-length-unaligned',
 'Zero descriptors are accepted with a ZeroLength that is not a multiple of 4 KiB.',
 'engine/src/format.c',
 """        if (out->reserved != 0 || out->zero_length % VHDX_LOG_SECTOR != 0)
            return VHDX_E_LOG_DESC_FIELD;""",
 """        if (out->reserved != 0)
            return VHDX_E_LOG_DESC_FIELD;""",
 ['--scenario','batch','--models','bitflip'], [],
 category='reader', expose='a log entry with a valid CRC and a zero descriptor of 100 bytes (hand-built log, accepted-invalid against the reference)',
 sweep_blind='this writer emits zero descriptors in whole pages only and the field is covered by the CRC')

mutant('replay-target-headers-writable',
 'The replay target check protects only the file identifier (first 64 KiB) instead of the first 192 KiB: a descriptor may overwrite a header.',
 'engine/src/log_replay.c',
 """    if (off < VHDX_PROTECTED_PREFIX)
        return 0;""",
 """    if (off < VHDX_HEADER1_OFFSET)
        return 0;""",
 ['--scenario','batch','--models','bitflip'], [],
 category='reader', expose='a log entry whose descriptor targets header 1 or 2 (hand-built; the reference refuses the replay, the engine overwrites a header)',
 sweep_blind='this writer never logs a header page, and a descriptor offset is covered by the CRC')

mutant('flushed-offset-check-rounds-up',
 'The truncation check compares FlushedFileOffset with the file size rounded up to 1 MiB, so a file truncated by less than 1 MiB below FlushedFileOffset is replayed.',
 'engine/src/image.c',
 """    if (file_size < seq.flushed_file_offset) {""",
 """    if (vhdx_round_up(file_size, VHDX_MiB) < seq.flushed_file_offset) {""",
 ['--scenario','fill','--models','lost'], [],
 category='reader', expose='an image with a pending log truncated to a size not a multiple of 1 MiB below the head\'s FlushedFileOffset (the reference refuses: accepted-invalid)',
 sweep_blind='no crash state of this writer has a file shorter than FlushedFileOffset (extensions are flushed before they are logged)')

mutant('overlay-ignores-zero-desc',
 'The read-only replay overlay applies data descriptors but skips zero descriptors ("zero extents read as zeros anyway"), so open\'s phase 1 and check see the pre-replay bytes under a zero descriptor.',
 'engine/src/log_replay.c',
 """        if (e->data)
            memcpy(p + (lo - off), e->data + (lo - e->offset), (size_t)(hi - lo));
        else
            memset(p + (lo - off), 0, (size_t)(hi - lo));""",
 """        if (e->data)
            memcpy(p + (lo - off), e->data + (lo - e->offset), (size_t)(hi - lo));""",
 ['--scenario','discard','--models','drop'], [],
 category='reader', expose='a pending log with a zero descriptor over non-zero BAT or metadata bytes (reference writer logs): the BAT loaded through the overlay, a read-only open and check disagree with the replayed file',
 sweep_blind='this writer logs all-zero pages only when a whole BAT page becomes zero, which its workloads never do')

mutant('search-readahead-short',
 'Full validation reads ahead one sector less than the distance to the next "loge" sector.',
 'engine/src/log_search.c',
 """    uint64_t safe = s->dist_next[i] < claimed ? s->dist_next[i] : claimed;""",
 """    uint64_t safe = s->dist_next[i] < claimed ? s->dist_next[i] - 1 : claimed;""",
 ['--scenario','all','--models','all'], [],
 category='reader', expose='none: only the size of the first read of each entry changes',
 equivalent='safe_end only sizes the read-ahead of ring_fetch(); any later sector is fetched on demand (target = sector + 1), so every entry is validated over the same bytes and the search result is unchanged; only the number and size of reads differ, and a failed read refuses cleanly whichever read it is')

# header, region-table and metadata validation, choice of the current copy
mutant('header-sequence-32bit',
 'The current header is chosen by comparing the low 32 bits of the two SequenceNumbers.',
 'engine/src/validate.c',
 """    out->current = out->h[1].sequence > out->h[0].sequence;""",
 """    out->current = (uint32_t)out->h[1].sequence > (uint32_t)out->h[0].sequence;""",
 ['--scenario','reopen','--models','torn'], [],
 category='header-region-choice', expose='an image whose header SequenceNumbers straddle a multiple of 2^32 (another writer, or a reference-writer image with large sequence numbers): the older header is used',
 sweep_blind='this engine\'s header sequence numbers stay small')

mutant('header2-validity-unchecked',
 'Only header 1 is tested for validity before the SequenceNumber comparison: an invalid header 2 with the greater (decoded) sequence number is used.',
 'engine/src/validate.c',
 """    for (int i = 0; i < 2; i++) {
        if (out->rc[i]) {
            out->current = 1 - i;""",
 """    for (int i = 0; i < 1; i++) {
        if (out->rc[i]) {
            out->current = 1 - i;""",
 ['--scenario','reopen','--models','bitflip'], [],
 category='header-region-choice', expose='a bit flip in the current header 2 (bitflip model): the engine uses the damaged copy and refuses or misreads where header 1 is intact (refused-recoverable)',
 sweep_blind='under the corruption models a refusal is forgiven, and a torn header write keeps all fields in its first 512 bytes')

mutant('region-copy2-ignored',
 'When region table copy 1 is invalid, the decoded copy 2 is never copied into the table in use: the image is refused although copy 2 is intact.',
 'engine/src/validate.c',
 """    *copy_used = rrc[0] ? 1 : 0;
    if (*copy_used == 1)
        memcpy(rt, other, sizeof *rt);""",
 """    *copy_used = rrc[0] ? 1 : 0;""",
 ['--scenario','fill','--models','bitflip'], ['open-refused'],
 category='header-region-choice', expose='a bit flip in region table copy 1 (bitflip model): refused although copy 2 is valid (refused-recoverable)',
 sweep_blind='a refusal under the corruption models is forgiven today')

mutant('header-equal-sequence-accepted',
 'Two valid headers with the same SequenceNumber are compared only up to the LogGuid: copies that differ in LogGuid or log fields are accepted and header 1 is used.',
 'engine/src/validate.c',
 """        if (memcmp(buf[0], buf[1], VHDX_HEADER_SIZE) != 0) {""",
 """        if (memcmp(buf[0], buf[1], VHDX_HDR_LOG_GUID) != 0) {""",
 ['--scenario','reopen','--models','bitflip'], [],
 category='header-region-choice', expose='two valid headers with equal SequenceNumbers differing in LogGuid (another writer; the reference refuses: accepted-invalid)',
 sweep_blind='this writer always gives the two copies different sequence numbers')

mutant('metadata-item-end-unchecked',
 'A metadata item is checked to start inside the metadata region but not to end inside it.',
 'engine/src/validate.c',
 """                                (uint64_t)e->offset + e->length > lay->meta_length))) {""",
 """                                e->offset > lay->meta_length))) {""",
 ['--scenario','fill','--models','bitflip'], [],
 category='header-region-choice', expose='a metadata table entry whose item runs past the end of the region (metadata has no checksum: fuzz_image_open edits reach it; accepted-invalid)',
 sweep_blind='no crash state touches the metadata table')

mutant('bat-block-end-unchecked',
 'A FULLY_PRESENT block is checked to start before the end of the file, not to end before it.',
 'engine/src/validate.c',
 """        if (off + bs > lay->file_size) {
            BAT_PROBLEM(VHDX_SEV_ERROR, VHDX_E_TRUNCATED, i,""",
 """        if (off >= lay->file_size) {
            BAT_PROBLEM(VHDX_SEV_ERROR, VHDX_E_TRUNCATED, i,""",
 ['--scenario','fill','--models','stale'], [],
 category='header-region-choice', expose='a file truncated inside its last block (another tool, a lost extension): the reference refuses a block past the end of the file, the engine opens (accepted-invalid)',
 sweep_blind='this writer makes every extension durable before the BAT names the block')

# checksum and geometry bugs that agree with themselves
mutant('log-crc-descriptors-only',
 'The log entry checksum covers the descriptor sectors only, on write and on read alike; data sectors are protected by their signature and split sequence number alone.',
 'engine/src/log_entry.c',
 """    uint32_t crc = crc32c(0, out, total);""",
 """    uint32_t crc = crc32c(0, out, desc_sectors * VHDX_LOG_SECTOR);""",
 ['--scenario','fill','--models','torn','--torn','512'], ['check-failed','open-refused','data:acked-data-lost','data:garbage'],
 extra=[('engine/src/log_entry.c', """    c = crc32c(c, buf + VHDX_LOGE_CHECKSUM + 4, hdr->entry_length - VHDX_LOGE_CHECKSUM - 4);""",
         """    c = crc32c(c, buf + VHDX_LOGE_CHECKSUM + 4, desc_sectors * VHDX_LOG_SECTOR - VHDX_LOGE_CHECKSUM - 4);""")],
 category='checksum-geometry', expose='a data sector torn inside (first and last 512 bytes new, middle old: torn model, 512-byte units); any reader that checks the whole entry (reference, QEMU) refuses every entry')

mutant('region-crc-used-entries',
 'The region table checksum covers the header and the entries in use instead of the whole 64 KiB, on write and on read alike.',
 'engine/src/format.c',
 """    if (crc_with_zeroed_field(buf, VHDX_REGION_TABLE_SIZE, 4) != out->checksum)""",
 """    if (crc_with_zeroed_field(buf, 16 + 32 * (size_t)count, 4) != out->checksum)""",
 ['--scenario','fill','--models','bitflip'], [],
 extra=[('engine/src/format.c', """    t->checksum = crc32c(0, buf, VHDX_REGION_TABLE_SIZE);""",
         """    t->checksum = crc32c(0, buf, 16 + 32 * (size_t)t->entry_count);""")],
 category='checksum-geometry', expose='any image this engine creates, read by an independent reader (reference judge, qemu-img check): both region tables have a wrong checksum; images of other writers are refused',
 sweep_blind='the engine reads what it wrote; the sweep judges with the engine\'s own decoder')

mutant('crc-sse-long-lane-shift',
 'The SSE4.2 three-way CRC merges its 8 KiB lanes with the shift table of the 256-byte lanes: every CRC over 24 KiB or more is wrong, the same way on write and on read.',
 'engine/src/crc32c.c',
 """    reg = hw_3way(reg, &p, &len, LANE_LONG, shift_long);""",
 """    reg = hw_3way(reg, &p, &len, LANE_LONG, shift_short);""",
 ['--scenario','wide','--models','torn'], [],
 category='checksum-geometry', expose='region tables (64 KiB) and log entries of 6 sectors or more checked by an independent CRC-32C (reference judge, qemu-img, fuzz_log_replay against ref_log for large entries); images of other writers are refused',
 sweep_blind='every CRC the sweep relies on is computed by the same function')

mutant('chunk-ratio-ignores-sector-size',
 'The chunk ratio is computed as if logical sectors were always 512 bytes: with 4096-byte sectors sector-bitmap entries are interleaved 8 times too often, by the writer and the reader alike.',
 'engine/src/format.c',
 """    g->chunk_ratio = (VHDX_SECTORS_PER_BITMAP * logical_sector) / block_size;""",
 """    g->chunk_ratio = (VHDX_SECTORS_PER_BITMAP * 512) / block_size;""",
 ['--scenario','wide','--logical-sector','4096','--models','drop'], [],
 category='checksum-geometry', expose='a disk with 4096-byte logical sectors and more than 2^32/block size blocks (wide scenario with --logical-sector 4096): the reference reader and QEMU find payload entries at other BAT indices',
 sweep_blind='the engine reads through the BAT layout it wrote; the default sweep never combines 4096-byte sectors with enough blocks to reach a sector-bitmap entry')

mutant('bat-index-bitmap-slot',
 'The BAT index of a payload block is block + (block + 1) / chunk_ratio: every chunk_ratio-th block (the last of each chunk) is stored in the sector-bitmap entry that follows it.',
 'engine/include/vhdx/format.h',
 """    return block + block / g->chunk_ratio;""",
 """    return block + (block + 1) / g->chunk_ratio;""",
 ['--scenario','wide','--models','drop'], [],
 category='checksum-geometry', expose='any write to block chunk_ratio-1 (block 63 of the wide scenario): the reference reader and QEMU see that block unallocated and a sector-bitmap entry PRESENT',
 sweep_blind='the engine writes and reads through the same index formula; check only warns about a sector-bitmap entry in state 6')

mutant('data-sequence-halves-swapped',
 'Data sectors carry SequenceLow at offset 4 and SequenceHigh at offset 4092 (swapped), in the writer and in the check alike.',
 'engine/src/format.c',
 """    vhdx_put32(sector + 4, (uint32_t)(sequence >> 32));
    memcpy(sector + 8, update + 8, 4084);
    vhdx_put32(sector + 4092, (uint32_t)sequence);""",
 """    vhdx_put32(sector + 4, (uint32_t)sequence);
    memcpy(sector + 8, update + 8, 4084);
    vhdx_put32(sector + 4092, (uint32_t)(sequence >> 32));""",
 ['--scenario','batch','--models','drop'], [],
 extra=[('engine/src/format.c', """    if (vhdx_get32(sector + 4) != (uint32_t)(sequence >> 32) || vhdx_get32(sector + 4092) != (uint32_t)sequence)""",
         """    if (vhdx_get32(sector + 4) != (uint32_t)sequence || vhdx_get32(sector + 4092) != (uint32_t)(sequence >> 32))""")],
 category='checksum-geometry', expose='any pending log with a data sector read by an independent reader (reference judge, QEMU on a crash image, ref_log in the fuzz targets)',
 sweep_blind='the engine reads the data sectors it wrote; the sweep judges with the engine\'s own decoder')

mutant('guid-data1-big-endian',
 'The well-known region and metadata item GUIDs are stored with their first field big-endian, by the writer and the reader alike.',
 'engine/src/format.c',
 """    {{(uint8_t)(a), (uint8_t)((a) >> 8), (uint8_t)((a) >> 16), (uint8_t)((a) >> 24),               \\""",
 """    {{(uint8_t)((a) >> 24), (uint8_t)((a) >> 16), (uint8_t)((a) >> 8), (uint8_t)(a),               \\""",
 ['--scenario','fill','--models','drop'], [],
 category='checksum-geometry', expose='any image read by an independent reader (reference judge, qemu-img info/check): no BAT or metadata region; images of other writers are refused (unknown required regions)',
 sweep_blind='the engine finds its regions by the same constants it wrote')

# ordering
mutant('ring-pressure-apply-no-flush',
 'When the ring is 3/4 full the writer applies the pending pages without its own flush and lets the new entry\'s flush cover them; the new entry starts a new sequence in the same epoch.',
 'engine/src/log_write.c',
 """    if (w->unapplied > 0 && (uint64_t)w->used + size > (uint64_t)L / 4 * 3) {
        rc = vhdx_log_apply(h);
        if (rc != 0)
            return rc;
    }""",
 """    if (w->unapplied > 0 && (uint64_t)w->used + size > (uint64_t)L / 4 * 3) {
        /* the entry's flush below makes the applied pages durable too */
        for (size_t i = 0; i < w->n_pending; i++) {
            rc = vhdx_io_write(h->dev, w->pending[i].data, VHDX_LOG_SECTOR, w->pending[i].offset);
            if (rc != 0)
                return rc;
        }
        w->n_pending = 0;
        w->unapplied = 0;
    }""",
 ['--scenario','batch','--apply-every','1000','--models','reorder'], ['data:acked-data-lost','check-failed'],
 category='ordering', expose='the ring filling to 3/4 with unapplied entries, reorder model in the epoch of the next entry: the new sequence is durable, some applied pages are not (pcsweep --scenario batch --apply-every 1000 --models reorder; no default scenario fills the ring: they apply every 8 or 16 entries, about 100 KiB of a 1 MiB ring)')

mutant('replay-no-flush-before-clear',
 'Replay writes the pages and extends the file without a flush of its own; the LogGuid clear (a header update, which flushes) shares their epoch.',
 'engine/src/log_replay.c',
 """    if (size < want) {
        rc = vhdx_io_truncate(dev, want);
        if (rc != 0)
            return rc;
    }
    return vhdx_io_flush(dev);""",
 """    if (size < want) {
        rc = vhdx_io_truncate(dev, want);
        if (rc != 0)
            return rc;
    }
    return 0; /* the header update that clears the LogGuid flushes */""",
 ['--scenario','batch','--models','recovery'], [],
 category='ordering', expose='a crash inside the replay with its writes reordered (the header clearing the LogGuid durable, a replayed page not); protocol rule: LogGuid cleared only after a flush that follows the last replayed write',
 sweep_blind='the recovery model cuts the replay only at prefixes of its writes, and in write order the header comes last')

mutant('log-guid-same-epoch-as-entry',
 'Starting a log, the first entry is not flushed on its own: the header update that sets the LogGuid flushes it together with the first header copy.',
 'engine/src/log_write.c',
 """    rc = ring_write(h, w->head, w->entry_buf, size);
    if (rc == 0)
        rc = vhdx_flush_dev(h);
    if (rc != 0)
        return rc;""",
 """    rc = ring_write(h, w->head, w->entry_buf, size);
    if (rc == 0 && w->started)
        rc = vhdx_flush_dev(h); /* a new log: the header update below flushes the entry */
    if (rc != 0)
        return rc;""",
 ['--scenario','fill','--models','reorder'], ['open-refused'],
 category='ordering', expose='reorder model in the first epoch of a session\'s log: the header naming the new LogGuid durable, the entry not (MS-VHDX 2.3.3: the file is then corrupt)')

mutant('flushed-offset-volatile',
 'Log entries carry the volatile file size as FlushedFileOffset instead of the size at the last flush.',
 'engine/src/log_write.c',
 """        .flushed_file_offset = h->durable_size / VHDX_MiB * VHDX_MiB,""",
 """        .flushed_file_offset = h->file_size / VHDX_MiB * VHDX_MiB,""",
 ['--scenario','all','--models','all'], [],
 category='ordering', expose='a payload write that extended the file and then failed (fault), a discard logged before the next flush, and a cut that keeps the entry but not the extension: the next open refuses the file as truncated (fault + crash: fuzz_crash_schedule, protocol rule FlushedFileOffset <= durable size)',
 sweep_equivalent='the sweep injects no faults and never writes after a crash: without a failed write every allocation flushes before it logs, so the volatile and the durable size are equal whenever an entry is built')

mutant('last-file-offset-stale',
 'A new block does not advance the end of the allocated structures, so LastFileOffset in later entries stays below the blocks their BAT pages name.',
 'engine/src/vdisk.c',
 """            if (!err) {
                h->alloc_end = at + bs;
                err = set_entry(h, &ps, idx, vhdx_bat_make(VHDX_BAT_FULLY_PRESENT, at >> 20));
            }""",
 """            if (!err)
                err = set_entry(h, &ps, idx, vhdx_bat_make(VHDX_BAT_FULLY_PRESENT, at >> 20));""",
 ['--scenario','fill','--models','stale'], [],
 category='ordering', expose='any entry logging a new block: its LastFileOffset is below the block it names (protocol/reference rule: LastFileOffset covers every structure the replayed BAT references); a replay by another reader would not extend the file far enough',
 sweep_blind='this writer flushes every extension before logging it, so the file is never shorter than what the BAT names and the value is never used')

mutant('apply-descending-order',
 'Applying a batch writes the pending pages in decreasing file offset order.',
 'engine/src/log_write.c',
 """    return x->offset < y->offset ? -1 : x->offset > y->offset;""",
 """    return x->offset > y->offset ? -1 : x->offset < y->offset;""",
 ['--scenario','all','--models','all'], [],
 category='ordering', expose='none',
 equivalent='all the pages of an apply are covered by durable log entries and flushed together before the ring space is reused; any subset of them persisting is repaired by the replay, so their order inside the epoch cannot be observed')

mutant('full-block-write-no-flush',
 'A write into a new block skips the flush before the BAT change when it covers the whole block ("nothing stale to expose"), so the block\'s data and extension share the epoch of the log entry.',
 'engine/src/vdisk.c',
 """    if (ps.n) {
        rc = vhdx_flush_dev(h);
        if (rc)""",
 """    if (ps.n) {
        rc = whole_blocks ? 0 : vhdx_flush_dev(h);
        if (rc)""",
 ['--scenario','overwrite','--models','stale'], ['data:garbage','check-failed','open-refused'],
 extra=[('engine/src/vdisk.c', """            if (!err)
                err = vhdx_io_write(h->dev, p, n, at + in);""",
         """            if (!err)
                err = vhdx_io_write(h->dev, p, n, at + in);
            if (n != bs)
                whole_blocks = 0;"""),
        ('engine/src/vdisk.c', """    struct page_set ps = {0};
    int err = 0;
    while (len > 0) {
        uint64_t block = off / bs, in = off % bs;
        size_t n = bs - in < len ? (size_t)(bs - in) : len;""",
         """    struct page_set ps = {0};
    int err = 0, whole_blocks = 1;
    while (len > 0) {
        uint64_t block = off / bs, in = off % bs;
        size_t n = bs - in < len ? (size_t)(bs - in) : len;""")],
 category='ordering', expose='a whole-block write into an unallocated block (churn), stale/reorder model in the entry\'s epoch: the BAT names a block whose data or extension is not durable')

# error paths
mutant('flush-error-not-poisoned',
 'A failed vhdx_flush is reported but does not poison the handle, so a later successful flush acknowledges writes the failed one dropped.',
 'engine/src/vdisk.c',
 """    rc = vhdx_flush_dev(h);
    if (rc) {
        h->poison = rc; /* what is durable is now unknown */
        return rc;
    }""",
 """    rc = vhdx_flush_dev(h);
    if (rc)
        return rc;""",
 ['--scenario','all','--models','all'], [],
 category='error-path', expose='a flush that fails and drops the pending writes (pcfaults "lose" flush), then more writes and a flush that succeeds: the fault judge would have to expect the dropped writes after that later flush (today it misses this mutant)',
 sweep_equivalent='the sweep injects no faults and never writes after a crash: no flush ever fails')

mutant('replay-error-ignored',
 'The result of applying the replay plan is not checked: a failed replay write or flush still clears the LogGuid.',
 'engine/src/image.c',
 """        if (rc == 0)
            rc = vhdx_replay_plan_apply(dev, &h->plan);""",
 """        if (rc == 0)
            vhdx_replay_plan_apply(dev, &h->plan);""",
 ['--scenario','all','--models','all'], [],
 category='error-path', expose='an I/O error or a failed (dropping) flush during replay (pcfaults replay phase): the LogGuid is cleared over pages that never reached the disk',
 sweep_equivalent='the sweep injects no faults and never writes after a crash: no replay write fails')

mutant('inplace-write-error-lost',
 'An in-place payload write stores its error in the wrong variable: when the same call also allocates a block, the error is overwritten by the flush result and the write reports success.',
 'engine/src/vdisk.c',
 """            err = vhdx_io_write(h->dev, p, n, (vhdx_bat_offset_mb(e) << 20) + in);""",
 """            rc = vhdx_io_write(h->dev, p, n, (vhdx_bat_offset_mb(e) << 20) + in);""",
 ['--scenario','all','--models','all'], [],
 category='error-path', expose='a write spanning an allocated block and a new one whose in-place part fails (pcfaults EIO on a payload write in churn\'s writes across the block end): the call succeeds, the data is not there',
 sweep_equivalent='the sweep injects no faults and never writes after a crash: no payload write fails')

mutant('bat-set-before-page-add',
 'A BAT entry is changed in memory before its page is recorded for the commit; when recording fails (ENOMEM) the in-memory BAT runs ahead of the log.',
 'engine/src/vdisk.c',
 """    int rc = page_set_add(ps, idx * 8 / VHDX_LOG_SECTOR);
    if (rc == 0)
        vhdx_bat_set(h, idx, value);
    return rc;""",
 """    vhdx_bat_set(h, idx, value);
    return page_set_add(ps, idx * 8 / VHDX_LOG_SECTOR);""",
 ['--scenario','all','--models','all'], [],
 category='error-path', expose='ENOMEM from vhdx/alloc while recording the BAT page (pcfaults), then writes into that block acknowledged by a flush: after a cut the BAT never named the block',
 sweep_equivalent='the sweep injects no faults and never writes after a crash: no allocation fails')

mutant('alloc-flush-error-not-poisoned',
 'When the flush before a BAT commit fails, the write returns the error without poisoning the handle: the in-memory BAT names blocks no log entry carries.',
 'engine/src/vdisk.c',
 """        rc = vhdx_flush_dev(h);
        if (rc)
            h->poison = rc;
        else
            rc = commit_bat_pages(h, &ps);""",
 """        rc = vhdx_flush_dev(h);
        if (rc == 0)
            rc = commit_bat_pages(h, &ps);""",
 ['--scenario','all','--models','all'], [],
 category='error-path', expose='a transient flush failure before a BAT commit (pcfaults), then writes into the same block and a successful flush: the block\'s BAT entry was never logged',
 sweep_equivalent='the sweep injects no faults and never writes after a crash: no flush ever fails')

# allocation
mutant('alloc-ignores-file-size',
 'A new block is placed at the end of the allocated structures only, ignoring a file that is already longer: space past the last block (a failed or unlogged extension) is reused with its old bytes.',
 'engine/src/vdisk.c',
 """            uint64_t at = vhdx_round_up(h->alloc_end > h->file_size ? h->alloc_end : h->file_size, VHDX_MiB);""",
 """            uint64_t at = vhdx_round_up(h->alloc_end, VHDX_MiB);""",
 ['--scenario','all','--models','all'], [],
 category='allocation', expose='a write that extended the file and failed (pcfaults short write), or a cut after an extension was flushed but before its BAT entry, then another allocation: unwritten sectors of the new block hold the old bytes (unwritten-sector check)',
 sweep_equivalent='the sweep injects no faults and never writes after a crash: without a failed write the file never extends past the last block')

mutant('alloc-unaligned-file-end',
 'A new block is placed at the end of the file without rounding up to 1 MiB: on a file whose size is not a 1 MiB multiple the BAT (which stores MiB) points below the data.',
 'engine/src/vdisk.c',
 """            uint64_t at = vhdx_round_up(h->alloc_end > h->file_size ? h->alloc_end : h->file_size, VHDX_MiB);""",
 """            uint64_t at = h->alloc_end > h->file_size ? h->alloc_end : h->file_size;""",
 ['--scenario','fill','--models','drop'], [],
 category='allocation', expose='an image (another writer, or appended to) whose file size is not a 1 MiB multiple, then a write into a new block: the data lands off the BAT\'s MiB offset',
 sweep_blind='this engine keeps the file a 1 MiB multiple, so rounding is a no-op on every image the sweep makes')

mutant('discard-reuses-block-space',
 'A whole-block discard keeps the block\'s file offset in the ZERO entry, and the next write into the block reuses that space in place without zeroing it.',
 'engine/src/vdisk.c',
 """                err = set_entry(h, &ps, idx, vhdx_bat_make(VHDX_BAT_ZERO, 0));""",
 """                err = set_entry(h, &ps, idx, vhdx_bat_make(VHDX_BAT_ZERO, vhdx_bat_offset_mb(e)));""",
 ['--scenario','fill','--models','prefix'], ['data:acked-data-lost','data:misplaced-data','data:foreign-data'],
 extra=[('engine/src/vdisk.c', """            uint64_t at = vhdx_round_up(h->alloc_end > h->file_size ? h->alloc_end : h->file_size, VHDX_MiB);""",
         """            uint64_t at = vhdx_bat_offset_mb(e) ? vhdx_bat_offset_mb(e) << 20 /* space of a discarded block */
                                                : vhdx_round_up(h->alloc_end > h->file_size ? h->alloc_end : h->file_size,
                                                                VHDX_MiB);""")],
 category='allocation', expose='a block written, discarded whole, then written again in part (churn, discard): the parts not rewritten show the data from before the discard')

# discard
mutant('discard-page-from-block',
 'A whole-block discard records the BAT page from the block number instead of the BAT index, forgetting interleaved sector-bitmap entries: past the first chunk the wrong page is logged.',
 'engine/src/vdisk.c',
 """            if (vhdx_bat_state(e) != VHDX_BAT_ZERO)
                err = set_entry(h, &ps, idx, vhdx_bat_make(VHDX_BAT_ZERO, 0));""",
 """            if (vhdx_bat_state(e) != VHDX_BAT_ZERO) {
                err = page_set_add(&ps, block * 8 / VHDX_LOG_SECTOR);
                if (!err)
                    vhdx_bat_set(h, idx, vhdx_bat_make(VHDX_BAT_ZERO, 0));
            }""",
 ['--scenario','wide','--ops','2000','--models','drop'], ['data:acked-data-lost'],
 category='discard', expose='a whole-block discard of a block whose BAT entry sits in a later page than block*8/4096 (wide: blocks 505..511), then a cut: the discard is lost (pcsweep --scenario wide --ops 2000 --models drop; the default wide workload discards too little to reach those blocks)')

mutant('discard-tail-partial-as-whole',
 'A discard that runs to the end of the disk treats its first block as whole even when it starts inside the block: the data before the discard\'s start is dropped.',
 'engine/src/vdisk.c',
 """        int whole = in == 0 && (n == bs || off + n == h->geo.virtual_size);""",
 """        int whole = n == bs || off + n == h->geo.virtual_size;""",
 ['--scenario','mixed','--models','drop'], ['data:acked-data-lost'],
 category='discard', expose='a discard starting inside the last block of the disk and running to its end, after data was written in that block before the discard\'s start',
 sweep_blind='no scenario discards a range that starts inside the last block and ends at the end of the disk (8 seeds of mixed, discard and churn tried)')

def table(paths):
    """Markdown table of the mutants with the methods that killed each in
    the given kill matrices (later files add the methods earlier ones did
    not run)."""
    res={}
    for path in paths:
        with open(path) as f:
            for m in json.load(f)['mutants']:
                r=res.setdefault(m['name'], {})
                for k, v in m.get('results', {}).items():
                    if v['result']!='skipped' and (k not in r or r[k]['result']=='skipped'):
                        r[k]=v
    lines=['| mutant | category | the bug | exposed by | killed today by |', '|---|---|---|---|---|']
    for meta, _ in sorted(M, key=lambda x: (x[0]['category'] or '', x[0]['name'])):
        r=res.get(meta['name'], {})
        kills=', '.join(f"{k} {v['seconds']:.0f} s" if v['seconds'] is not None else k
                        for k, v in sorted(r.items()) if v['result']=='killed')
        ran=sorted(k for k, v in r.items() if v['result'] in ('killed', 'survived'))
        verdict=(kills or ('none of ' + ', '.join(ran) if ran else 'not measured'))
        if meta.get('equivalent'):
            verdict='equivalent' + (' (KILLED: ' + kills + ')' if kills else '')
        cell=lambda t: (t or '').replace('|', '\\|')
        lines.append(f"| `{meta['name']}` | {meta['category']} | {cell(meta['description'])} | {cell(meta.get('expose'))} | {verdict} |")
    return '\n'.join(lines)


if len(os.sys.argv) > 1 and os.sys.argv[1]=='--table':
    print(table(os.sys.argv[2:]))
    raise SystemExit(0)
os.makedirs(OUT, exist_ok=True)
only=set(os.sys.argv[1:])
for meta, edits in M:
    name=meta['name']
    if only and name not in only:
        continue
    d=tempfile.mkdtemp()
    for path, old, new in edits:
        bpath=os.path.join(d,'b',path)
        src=open(bpath).read() if os.path.exists(bpath) else open(os.path.join(ROOT,path)).read()
        orig=open(os.path.join(ROOT,path)).read()
        assert src.count(old)==1, (name, path, src.count(old))
        for side in 'ab':
            os.makedirs(os.path.join(d,side,os.path.dirname(path)),exist_ok=True)
        open(os.path.join(d,'a',path),'w').write(orig)
        open(bpath,'w').write(src.replace(old,new,1))
    p=''
    for path in sorted({e[0] for e in edits}):
        p+='diff -ruN a/%s b/%s\n' % (path, path)
        p+=subprocess.run(['diff','-uN','--label','a/'+path,'--label','b/'+path,'a/'+path,'b/'+path],cwd=d,
                          stdout=subprocess.PIPE,text=True).stdout
    shutil.rmtree(d)
    out=os.path.join(OUT,name+'.patch')
    hunks=lambda t: [l for l in t.splitlines() if not l.startswith(('--- ','+++ '))]
    if not os.path.exists(out) or hunks(open(out).read())!=hunks(p):   # no rewrite for a timestamp
        open(out,'w').write(p)
    meta={k: v for k, v in meta.items() if v is not None}
    with open(os.path.join(OUT,name+'.json'),'w') as f:
        json.dump(meta,f,indent=2)
        f.write('\n')
    print(name, 'ok')
