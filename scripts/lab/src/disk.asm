; disk.asm - the whole golden disk image, built by nasm alone (nasm -f bin).
; Needs: -DMBR="mbr.bin" -DEFIAPP="BOOTX64.EFI" -DEFISIZE=<bytes>
;        -DMARKER="..." -DDISKID="..." -DDISKSIG=0x........
;
;   LBA 0        MBR: boot code (mbr.asm), disk signature, one partition
;   LBA 1        id block: "MBDISK01", marker at +16, per-clone id at +64
;   LBA 2048..   partition 1, type EF (EFI system partition), FAT12:
;                \EFI\BOOT\BOOTX64.EFI (efiapp.asm)
; No mkfs/mtools/sfdisk needed: the FAT file system is laid out right here.
bits 16

PART_LBA equ 2048
TOTSEC   equ 4096                   ; ESP: 2 MiB; whole disk 3 MiB
SPC      equ 4                      ; sectors per cluster
CLUS     equ SPC*512
RSVD     equ 1
NFATS    equ 2
ROOTENT  equ 512
ROOTSEC  equ ROOTENT*32/512
FATSEC   equ 3                      ; 1016 entries * 1.5 bytes <= 3 sectors
%assign FILECL (EFISIZE+CLUS-1)/CLUS
FATDATE  equ ((2026-1980)<<9)|(1<<5)|1

HEADS    equ 4                      ; the geometry the CHS fields describe:
SPT      equ 32                     ; 128 sectors per cylinder, 48 cylinders
%macro chs 1                        ; head, sector | cylinder bits 8-9, cylinder bits 0-7
        db ((%1) / SPT) % HEADS
        db ((%1) % SPT + 1) | ((((%1) / (SPT*HEADS)) >> 2) & 0xc0)
        db ((%1) / (SPT*HEADS)) & 0xff
%endmacro

; ---- LBA 0: MBR --------------------------------------------------------
        incbin MBR, 0, 440
        dd DISKSIG                  ; disk signature (stamp-disk rewrites it)
        dw 0
        db 0x80                     ; partition 1: active
        chs PART_LBA                ; real CHS values, not the FE FF FF "LBA only" form:
        db 0xef                     ; iPXE's BIOS sanboot guesses the disk geometry from
        chs PART_LBA+TOTSEC-1       ; them and reads the MBR by CHS (FE FF FF on a 3 MiB
        dd PART_LBA, TOTSEC         ; disk: 255x63 -> 0 cylinders -> "Input/output error")
        times 3*16 db 0
        dw 0xaa55

; ---- LBA 1: id block ---------------------------------------------------
idblk:  db 'MBDISK01'
        times 16-($-idblk) db 0
        db MARKER
        times 64-($-idblk) db 0
        db DISKID
        times 512-($-idblk) db 0

        times PART_LBA*512-($-$$) db 0

; ---- ESP (FAT12) -------------------------------------------------------
fatfs:  db 0xeb, 0x3c, 0x90         ; jump (firmware checks for EB/E9)
        db 'METALBT '               ; OEM name
        dw 512                      ; bytes per sector
        db SPC
        dw RSVD
        db NFATS
        dw ROOTENT
        dw TOTSEC                   ; total sectors (16-bit field)
        db 0xf8                     ; media: fixed disk
        dw FATSEC
        dw SPT, HEADS               ; sectors per track, heads
        dd PART_LBA                 ; hidden sectors
        dd 0                        ; total sectors (32-bit field)
        db 0x80, 0, 0x29            ; drive, reserved, extended boot signature
        dd DISKSIG                  ; volume serial number
        db 'MBLAB ESP  '            ; volume label (11)
        db 'FAT12   '
.code:  cli                         ; not bootable itself
        hlt
        jmp .code
        times 510-($-fatfs) db 0
        dw 0xaa55

; FAT entry n: 0 media, 1 end, 2 \EFI (dir), 3 \EFI\BOOT (dir),
; 4.. BOOTX64.EFI's contiguous chain, then free.
%macro fatent 1
  %if (%1) == 0
    %assign FE 0xff8
  %elif (%1) < 4
    %assign FE 0xfff
  %elif (%1) < 4+FILECL-1
    %assign FE (%1)+1
  %elif (%1) == 4+FILECL-1
    %assign FE 0xfff
  %else
    %assign FE 0
  %endif
%endmacro
%macro fat 0
  %%start:
  %assign i 0
  %rep (4+FILECL+1)/2               ; two 12-bit entries per 3 bytes
    fatent i
    %assign A FE
    fatent i+1
    %assign B FE
    db A & 0xff, ((A >> 8) & 0x0f) | ((B & 0x0f) << 4), (B >> 4) & 0xff
    %assign i i+2
  %endrep
  times FATSEC*512-($-%%start) db 0
%endmacro
; a directory entry: name (11 chars), attributes, first cluster, size
%macro dirent 4
  %%e: db %1
  times 11-($-%%e) db ' '
  db %2, 0, 0
  dw 0, FATDATE, FATDATE, 0         ; created time/date, accessed date, cluster hi
  dw 0, FATDATE                     ; written time/date
  dw %3
  dd %4
%endmacro

        fat
        fat
root:   dirent 'MBLAB ESP', 0x08, 0, 0      ; volume label
        dirent 'EFI', 0x10, 2, 0
        times ROOTSEC*512-($-root) db 0
clus2:  dirent '.', 0x10, 2, 0              ; \EFI
        dirent '..', 0x10, 0, 0
        dirent 'BOOT', 0x10, 3, 0
        times CLUS-($-clus2) db 0
clus3:  dirent '.', 0x10, 3, 0              ; \EFI\BOOT
        dirent '..', 0x10, 2, 0
        dirent 'BOOTX64 EFI', 0x20, 4, EFISIZE  ; 8.3: name, blank-padded, extension
        times CLUS-($-clus3) db 0
clus4:  incbin EFIAPP
        times FILECL*CLUS-($-clus4) db 0
        times TOTSEC*512-($-fatfs) db 0
