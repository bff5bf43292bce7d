; mbr.asm - boot code of the lab's golden disk (nasm -f bin, 440 bytes).
;
; BIOS-booted (local disk, or an iPXE `sanboot` SAN disk as drive 0x80) it
; reads LBA 1 of the boot drive with INT 13h AH=42h and, if that sector is the
; lab's id block, prints on COM1 (0x3F8):
;     METALBOOT-DISK-OK <marker> <id> bios sig=<MBR disk signature, hex>
; then writes to port 0xF4 (isa-debug-exit, when QEMU has one) and halts.
; Id block (LBA 1, see make-bootdisk): +0 "MBDISK01", +16 marker\0, +64 id\0.
; Bytes 440.. (disk signature, partition table, 55AA) are written by disk.asm.
bits 16
org 0x7c00

SECT1   equ 0x7e00                  ; where LBA 1 is read to

boot:   cli
        xor ax, ax
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov sp, boot
        sti
        cld
        mov [bootdrv], dl
        ; 16550 on COM1: DLAB, divisor 1 (115200), 8N1, FIFO, DTR|RTS
        mov dx, 0x3fb
        mov al, 0x80
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
        dec dx
        mov al, 0xc7
        out dx, al
        mov dx, 0x3fc
        mov al, 0x03
        out dx, al

        mov ah, 0x42                ; read LBA 1
        mov dl, [bootdrv]
        mov si, packet
        int 0x13
        jc fail
        cmp dword [SECT1], 'MBDI'
        jne fail
        cmp dword [SECT1+4], 'SK01'
        jne fail
        mov byte [SECT1+63], 0      ; bound both strings
        mov byte [SECT1+127], 0

        mov si, s_ok
        call print
        mov si, SECT1+16            ; marker
        call print
        mov al, ' '
        call putc
        mov si, SECT1+64            ; per-clone id
        call print
        mov si, s_sig
        call print
        mov edx, [boot+0x1b8]       ; disk signature as 8 hex digits
        mov cx, 8
.hex:   rol edx, 4
        mov al, dl
        and al, 0x0f
        cmp al, 10
        sbb al, 0x69
        das                         ; 0..15 -> '0'..'9','A'..'F'
        call putc
        loop .hex
        jmp done
fail:   mov si, s_err
        call print
done:   mov si, s_nl
        call print
        xor al, al
        out 0xf4, al                ; isa-debug-exit: QEMU exits (if present)
.stop:  cli
        hlt
        jmp .stop

print:  lodsb                       ; ds:si, NUL-terminated
        test al, al
        jz .r
        call putc
        jmp print
.r:     ret

putc:   push dx                     ; al -> COM1 once the THR is empty
        push ax
        mov dx, 0x3fd
.w:     in al, dx
        test al, 0x20
        jz .w
        pop ax
        mov dx, 0x3f8
        out dx, al
        pop dx
        ret

packet: db 16, 0                    ; INT 13h AH=42h disk address packet
        dw 1                        ; one sector
        dw SECT1, 0                 ; to 0000:7E00
        dq 1                        ; LBA 1
bootdrv: db 0x80
s_ok:   db 13, 10, 'METALBOOT-DISK-OK ', 0
s_sig:  db ' bios sig=', 0
s_err:  db 13, 10, 'METALBOOT-DISK-ERR bios: no id block at LBA 1', 0
s_nl:   db 13, 10, 0

%if ($-$$) > 440
%error "boot code is longer than 440 bytes"
%endif
        times 440-($-$$) db 0
