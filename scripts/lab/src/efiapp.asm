; efiapp.asm - the golden disk's UEFI boot program, \EFI\BOOT\BOOTX64.EFI
; (nasm -f bin: a hand-made x86-64 PE32+ image, one RWX section, no imports,
; no relocations needed because all addressing is RIP-relative).
;
; It looks through every BlockIo handle for a whole disk (not a partition)
; whose LBA 1 is the lab's id block ("MBDISK01", marker at +16, id at +64; see
; make-bootdisk) and prints on COM1 (0x3F8):
;     METALBOOT-DISK-OK <marker> <id> efi
; then writes to port 0xF4 (isa-debug-exit, when present) and halts.
bits 64
default rel

FILE_ALIGN equ 0x200
SEC_ALIGN equ 0x1000
EFI_BS    equ 96                    ; EFI_SYSTEM_TABLE.BootServices
BS_HANDLEPROTOCOL equ 152
BS_LOCATEHANDLE   equ 176
BIO_MEDIA  equ 8                    ; EFI_BLOCK_IO_PROTOCOL.Media
BIO_READ   equ 24                   ; .ReadBlocks
MEDIA_ID   equ 0                    ; EFI_BLOCK_IO_MEDIA.MediaId
MEDIA_PART equ 6                    ; .LogicalPartition
MEDIA_BSZ  equ 12                   ; .BlockSize

; ---- headers (file offset 0) -------------------------------------------
mz:     dw 'MZ'
        times 0x3c-($-mz) db 0
        dd pehdr-mz
pehdr:  dd 'PE'
        dw 0x8664                   ; Machine: x86-64
        dw 1                        ; NumberOfSections
        dd 0, 0, 0                  ; time stamp, symbol table, symbols
        dw opthdr_end-opthdr        ; SizeOfOptionalHeader
        dw 0x0022                   ; EXECUTABLE_IMAGE | LARGE_ADDRESS_AWARE
opthdr: dw 0x020b                   ; PE32+
        db 0, 0                     ; linker version
        dd FILE_CODE                ; SizeOfCode
        dd 0, 0                     ; SizeOfInitializedData, SizeOfUninitializedData
        dd SEC_ALIGN+(main-code)    ; AddressOfEntryPoint
        dd SEC_ALIGN                ; BaseOfCode
        dq 0x10000000               ; ImageBase
        dd SEC_ALIGN, FILE_ALIGN
        dw 0, 0, 0, 0, 0, 0         ; OS, image, subsystem versions
        dd 0                        ; Win32VersionValue
        dd SEC_ALIGN+((MEM_CODE+SEC_ALIGN-1)/SEC_ALIGN)*SEC_ALIGN  ; SizeOfImage
        dd FILE_ALIGN                ; SizeOfHeaders
        dd 0                        ; CheckSum
        dw 10                       ; Subsystem: EFI application
        dw 0                        ; DllCharacteristics
        dq 0x10000, 0x10000, 0x10000, 0x10000  ; stack/heap reserve/commit
        dd 0                        ; LoaderFlags
        dd 16                       ; NumberOfRvaAndSizes
        times 16 dq 0               ; data directories: all empty
opthdr_end:
        db '.text', 0, 0, 0
        dd MEM_CODE                 ; VirtualSize
        dd SEC_ALIGN                ; VirtualAddress
        dd FILE_CODE                ; SizeOfRawData
        dd FILE_ALIGN                ; PointerToRawData
        dd 0, 0
        dw 0, 0
        dd 0xe0000020               ; CODE | EXECUTE | READ | WRITE
        times FILE_ALIGN-($-mz) db 0

; ---- the one section (file offset 0x200, RVA 0x1000) -------------------
code:
main:   push rbp
        push rbx
        push r12
        push r13
        push r14                    ; 5 pushes + return address: rsp is 16-aligned
        sub rsp, 48                 ; 32 bytes shadow space + 5th argument
        mov r12, [rdx+EFI_BS]
        call serial_init

        ; LocateHandle(ByProtocol=2, &BlockIoGuid, NULL, &size, handles)
        mov qword [hsize], HMAX*8
        mov ecx, 2
        lea rdx, [blockio_guid]
        xor r8d, r8d
        lea r9, [hsize]
        lea rax, [handles]
        mov [rsp+32], rax
        call [r12+BS_LOCATEHANDLE]
        test rax, rax
        jnz notfound
        xor r13d, r13d              ; offset into handles[]

next:   cmp r13, [hsize]
        jae notfound
        lea rax, [handles]
        mov rcx, [rax+r13]
        add r13, 8
        lea rdx, [blockio_guid]     ; HandleProtocol(handle, &BlockIoGuid, &bio)
        lea r8, [bio]
        call [r12+BS_HANDLEPROTOCOL]
        test rax, rax
        jnz next
        mov rcx, [bio]
        mov rax, [rcx+BIO_MEDIA]
        cmp byte [rax+MEDIA_PART], 0
        jne next                    ; a partition, not the disk
        mov r9d, [rax+MEDIA_BSZ]
        cmp r9d, 512
        jb next
        cmp r9d, SECBUF
        ja next
        mov edx, [rax+MEDIA_ID]     ; ReadBlocks(bio, MediaId, 1, BlockSize, secbuf)
        mov r8d, 1
        lea rax, [secbuf]
        mov [rsp+32], rax
        call [rcx+BIO_READ]
        test rax, rax
        jnz next
        mov rax, 'MBDISK01'
        cmp [secbuf], rax
        jne next

        mov byte [secbuf+63], 0
        mov byte [secbuf+127], 0
        lea rsi, [s_ok]
        call print
        lea rsi, [secbuf+16]
        call print
        mov al, ' '
        call putc
        lea rsi, [secbuf+64]
        call print
        lea rsi, [s_efi]
        call print
        jmp finish
notfound:
        lea rsi, [s_err]
        call print
finish: xor eax, eax
        out 0xf4, al                ; isa-debug-exit (if present)
.stop:  cli
        hlt
        jmp .stop

serial_init:                        ; 115200 8N1, FIFO (OVMF set it up too)
        mov dx, 0x3fb
        mov al, 0x83
        out dx, al
        mov dx, 0x3f8
        mov al, 1
        out dx, al
        inc dx
        xor al, al
        out dx, al
        mov dx, 0x3fb
        mov al, 0x03
        out dx, al
        ret

print:  lodsb                       ; rsi: NUL-terminated ASCII
        test al, al
        jz .r
        call putc
        jmp print
.r:     ret

putc:   mov ah, al
        mov dx, 0x3fd
.w:     in al, dx
        test al, 0x20
        jz .w
        mov al, ah
        mov dx, 0x3f8
        out dx, al
        ret

blockio_guid:                       ; 964E5B21-6459-11D2-8E39-00A0C969723B
        dd 0x964e5b21
        dw 0x6459, 0x11d2
        db 0x8e, 0x39, 0x00, 0xa0, 0xc9, 0x69, 0x72, 0x3b
s_ok:   db 13, 10, 'METALBOOT-DISK-OK ', 0
s_efi:  db ' efi', 13, 10, 0
s_err:  db 13, 10, 'METALBOOT-DISK-ERR efi: no disk with an id block', 13, 10, 0

HMAX    equ 128
SECBUF  equ 4096
        align 8
hsize:  dq 0
bio:    dq 0
handles: times HMAX dq 0
        times (SECBUF-(($-code) % SECBUF)) % SECBUF db 0   ; page-aligned (any IoAlign)
secbuf: times SECBUF db 0
MEM_CODE  equ $-code
        times (FILE_ALIGN-(($-code) % FILE_ALIGN)) % FILE_ALIGN db 0
FILE_CODE equ $-code
