;; Records that it ran: appends one byte to the file named by $BACALHAU_EXECUTION_ID in the
;; preopened directory "/runs", so a test can count how many times each execution ran (a
;; file's size). Exits 1 without the variable, 2 without "/runs", 3 when the file cannot be
;; opened or written.
(module
  (import "wasi_snapshot_preview1" "environ_sizes_get"
    (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get"
    (func $environ_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get"
    (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_dir_name"
    (func $fd_prestat_dir_name (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  ;; 0..64: scratch; 64..128: constants; 512..520: a prestat; 1024..8192: the variables'
  ;; addresses; 8192..12288: a preopen's name; 16384..: the variables' text.
  (memory (export "memory") 8)
  (data (i32.const 64) "BACALHAU_EXECUTION_ID=")
  (data (i32.const 96) "/runs")
  (data (i32.const 104) "x")
  (global $pointers i32 (i32.const 1024))
  (global $name i32 (i32.const 8192))
  (global $text i32 (i32.const 16384))

  ;; Whether the $len bytes at $a and $b are equal.
  (func $same (param $a i32) (param $b i32) (param $len i32) (result i32)
    (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.eq (local.get $i) (local.get $len)))
        (if (i32.ne (i32.load8_u (i32.add (local.get $a) (local.get $i)))
                    (i32.load8_u (i32.add (local.get $b) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 1))

  (func $strlen (param $ptr i32) (result i32)
    (local $end i32)
    (local.set $end (local.get $ptr))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (i32.load8_u (local.get $end))))
        (local.set $end (i32.add (local.get $end) (i32.const 1)))
        (br $next)))
    (i32.sub (local.get $end) (local.get $ptr)))

  (func (export "_start")
    (local $count i32) (local $i i32) (local $entry i32) (local $id i32) (local $id_len i32)
    (local $dir i32) (local $fd i32)
    ;; The execution ID from the environment.
    (if (call $environ_sizes_get (i32.const 16) (i32.const 20))
      (then (call $proc_exit (i32.const 1))))
    (local.set $count (i32.load (i32.const 16)))
    (if (i32.or (i32.gt_u (local.get $count) (i32.const 1792))
                (i32.gt_u (i32.load (i32.const 20)) (i32.const 491520)))
      (then (call $proc_exit (i32.const 1))))
    (if (call $environ_get (global.get $pointers) (global.get $text))
      (then (call $proc_exit (i32.const 1))))
    (local.set $id (i32.const -1))
    (block $found
      (loop $each
        (br_if $found (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $entry
          (i32.load (i32.add (global.get $pointers) (i32.shl (local.get $i) (i32.const 2)))))
        (if (i32.and (i32.ge_u (call $strlen (local.get $entry)) (i32.const 22))
                     (call $same (local.get $entry) (i32.const 64) (i32.const 22)))
          (then
            (local.set $id (i32.add (local.get $entry) (i32.const 22)))
            (br $found)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $each)))
    (if (i32.eq (local.get $id) (i32.const -1)) (then (call $proc_exit (i32.const 1))))
    (local.set $id_len (call $strlen (local.get $id)))
    (if (i32.eqz (local.get $id_len)) (then (call $proc_exit (i32.const 1))))
    ;; The preopened directory named "/runs".
    (local.set $dir (i32.const -1))
    (local.set $fd (i32.const 3))
    (block $found
      (loop $each
        (br_if $found (call $fd_prestat_get (local.get $fd) (i32.const 512)))
        (if (i32.eq (i32.load (i32.const 516)) (i32.const 5))
          (then
            (if (i32.eqz (call $fd_prestat_dir_name (local.get $fd) (global.get $name)
                                                   (i32.const 5)))
              (then
                (if (call $same (global.get $name) (i32.const 96) (i32.const 5))
                  (then
                    (local.set $dir (local.get $fd))
                    (br $found)))))))
        (local.set $fd (i32.add (local.get $fd) (i32.const 1)))
        (br $each)))
    (if (i32.eq (local.get $dir) (i32.const -1)) (then (call $proc_exit (i32.const 2))))
    ;; Open (creating) for append; rights: fd_write (1 << 6).
    (if (call $path_open (local.get $dir) (i32.const 0) (local.get $id) (local.get $id_len)
                         (i32.const 1) (i64.const 64) (i64.const 0) (i32.const 1) (i32.const 24))
      (then (call $proc_exit (i32.const 3))))
    (local.set $fd (i32.load (i32.const 24)))
    (i32.store (i32.const 0) (i32.const 104))
    (i32.store (i32.const 4) (i32.const 1))
    (if (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))
      (then (call $proc_exit (i32.const 3))))
    (if (i32.ne (i32.load (i32.const 8)) (i32.const 1))
      (then (call $proc_exit (i32.const 3))))
    (drop (call $fd_close (local.get $fd)))))
