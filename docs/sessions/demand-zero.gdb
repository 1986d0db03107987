set pagination off
set confirm off
target remote :1234
monitor break fault 0x40002000-0x40003000 r user
continue
x/i $pc
info registers pc priv satp
monitor walk 0x40002000 r u
monitor stepi
maintenance flush register-cache
info registers pc priv scause stval sepc
break vmfault
continue
bt 2
finish
delete
monitor finish trap
maintenance flush register-cache
x/i $pc
x/gx 0x40002000
stepi
info registers pc a2
