/*
 * qemu/shim-rename.h (powercut shim) - QEMU's external names that the
 * project's own libraries also define (libvhdx names its functions vhdx_*,
 * and has a crc32c), renamed with a qemu_ prefix in every file that
 * includes qemu/osdep.h (each QEMU file includes it first), so both
 * implementations link into one program.  The list is the driver files'
 * non-static functions; a name missing here shows up as a "multiple
 * definition" link error.
 */
#ifndef QSHIM_QEMU_SHIM_RENAME_H
#define QSHIM_QEMU_SHIM_RENAME_H

#define crc32c qemu_crc32c
#define vhdx_checksum_calc qemu_vhdx_checksum_calc
#define vhdx_checksum_is_valid qemu_vhdx_checksum_is_valid
#define vhdx_guid_generate qemu_vhdx_guid_generate
#define vhdx_header_le_export qemu_vhdx_header_le_export
#define vhdx_header_le_import qemu_vhdx_header_le_import
#define vhdx_log_data_le_export qemu_vhdx_log_data_le_export
#define vhdx_log_data_le_import qemu_vhdx_log_data_le_import
#define vhdx_log_desc_le_export qemu_vhdx_log_desc_le_export
#define vhdx_log_desc_le_import qemu_vhdx_log_desc_le_import
#define vhdx_log_entry_hdr_le_export qemu_vhdx_log_entry_hdr_le_export
#define vhdx_log_entry_hdr_le_import qemu_vhdx_log_entry_hdr_le_import
#define vhdx_log_write_and_flush qemu_vhdx_log_write_and_flush
#define vhdx_metadata_entry_le_export qemu_vhdx_metadata_entry_le_export
#define vhdx_metadata_entry_le_import qemu_vhdx_metadata_entry_le_import
#define vhdx_metadata_header_le_export qemu_vhdx_metadata_header_le_export
#define vhdx_metadata_header_le_import qemu_vhdx_metadata_header_le_import
#define vhdx_parse_log qemu_vhdx_parse_log
#define vhdx_region_entry_le_export qemu_vhdx_region_entry_le_export
#define vhdx_region_entry_le_import qemu_vhdx_region_entry_le_import
#define vhdx_region_header_le_export qemu_vhdx_region_header_le_export
#define vhdx_region_header_le_import qemu_vhdx_region_header_le_import
#define vhdx_update_checksum qemu_vhdx_update_checksum
#define vhdx_update_headers qemu_vhdx_update_headers
#define vhdx_user_visible_write qemu_vhdx_user_visible_write

#endif
