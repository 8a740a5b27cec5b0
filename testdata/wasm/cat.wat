;; Writes the content of each file named in its arguments to stdout; exits 1 when one cannot
;; be read (after trying the rest). A path is resolved as wasi-libc does: against the
;; preopened directory whose name is its longest leading match.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get"
    (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get"
    (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_dir_name"
    (func $fd_prestat_dir_name (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  ;; 0..64: scratch; 64..128: messages; 512..520: a prestat; 1024..2048: argument addresses;
  ;; 2048..8192: argument text; 8192..12288: a preopen's name; 32768..65536: the read buffer.
  (memory (export "memory") 2)
  (data (i32.const 64) "cat: cannot read ")
  (data (i32.const 96) "\n")

  (func $write (param $fd i32) (param $ptr i32) (param $len i32) (result i32)
    (local $errno i32)
    (block $done
      (loop $more
        (br_if $done (i32.eqz (local.get $len)))
        (i32.store (i32.const 0) (local.get $ptr))
        (i32.store (i32.const 4) (local.get $len))
        (local.set $errno
          (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
        (if (local.get $errno) (then (return (local.get $errno))))
        (local.set $ptr (i32.add (local.get $ptr) (i32.load (i32.const 8))))
        (local.set $len (i32.sub (local.get $len) (i32.load (i32.const 8))))
        (br $more)))
    (i32.const 0))

  (func $strlen (param $ptr i32) (result i32)
    (local $end i32)
    (local.set $end (local.get $ptr))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (i32.load8_u (local.get $end))))
        (local.set $end (i32.add (local.get $end) (i32.const 1)))
        (br $next)))
    (i32.sub (local.get $end) (local.get $ptr)))

  ;; Whether $path (no leading '/') lies under $prefix (no leading or trailing '/'):
  ;; the empty prefix holds everything, "data" holds "data" and "data/x" but not "database".
  (func $under (param $prefix i32) (param $prefix_len i32) (param $path i32) (param $path_len i32)
    (result i32)
    (local $i i32)
    (if (i32.gt_u (local.get $prefix_len) (local.get $path_len)) (then (return (i32.const 0))))
    (block $same
      (loop $next
        (br_if $same (i32.eq (local.get $i) (local.get $prefix_len)))
        (if (i32.ne (i32.load8_u (i32.add (local.get $prefix) (local.get $i)))
                    (i32.load8_u (i32.add (local.get $path) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (if (i32.or (i32.eqz (local.get $prefix_len))
                (i32.eq (local.get $prefix_len) (local.get $path_len)))
      (then (return (i32.const 1))))
    (i32.eq (i32.load8_u (i32.add (local.get $path) (local.get $prefix_len))) (i32.const 47)))

  ;; Copies one file to stdout; returns 0, or 1 when it cannot be read.
  (func $cat (param $path i32) (param $len i32) (result i32)
    (local $fd i32) (local $best_fd i32) (local $best_len i32)
    (local $name i32) (local $name_len i32) (local $file i32) (local $n i32)
    ;; Paths are taken from the root: drop leading slashes.
    (block $trimmed
      (loop $slash
        (br_if $trimmed (i32.eqz (local.get $len)))
        (br_if $trimmed (i32.ne (i32.load8_u (local.get $path)) (i32.const 47)))
        (local.set $path (i32.add (local.get $path) (i32.const 1)))
        (local.set $len (i32.sub (local.get $len) (i32.const 1)))
        (br $slash)))
    (local.set $best_fd (i32.const -1))
    (local.set $best_len (i32.const -1))
    (local.set $fd (i32.const 3))
    (block $no_more
      (loop $preopen
        (br_if $no_more (call $fd_prestat_get (local.get $fd) (i32.const 512)))
        (local.set $name_len (i32.load (i32.const 516)))
        (if (i32.and (i32.eqz (i32.load8_u (i32.const 512)))
                     (i32.le_u (local.get $name_len) (i32.const 4096)))
          (then
            (if (i32.eqz (call $fd_prestat_dir_name (local.get $fd) (i32.const 8192)
                                                     (local.get $name_len)))
              (then
                ;; The name without its leading and trailing '/' (or NUL); "." is the root.
                (local.set $name (i32.const 8192))
                (block $end_trimmed
                  (loop $trailing
                    (br_if $end_trimmed (i32.eqz (local.get $name_len)))
                    (br_if $end_trimmed
                      (i32.and
                        (i32.ne (i32.load8_u (i32.add (local.get $name)
                                  (i32.sub (local.get $name_len) (i32.const 1)))) (i32.const 47))
                        (i32.ne (i32.load8_u (i32.add (local.get $name)
                                  (i32.sub (local.get $name_len) (i32.const 1)))) (i32.const 0))))
                    (local.set $name_len (i32.sub (local.get $name_len) (i32.const 1)))
                    (br $trailing)))
                (block $start_trimmed
                  (loop $leading
                    (br_if $start_trimmed (i32.eqz (local.get $name_len)))
                    (br_if $start_trimmed
                      (i32.ne (i32.load8_u (local.get $name)) (i32.const 47)))
                    (local.set $name (i32.add (local.get $name) (i32.const 1)))
                    (local.set $name_len (i32.sub (local.get $name_len) (i32.const 1)))
                    (br $leading)))
                (if (i32.and (i32.eq (local.get $name_len) (i32.const 1))
                             (i32.eq (i32.load8_u (local.get $name)) (i32.const 46)))
                  (then (local.set $name_len (i32.const 0))))
                (if (i32.and
                      (i32.gt_s (local.get $name_len) (local.get $best_len))
                      (call $under (local.get $name) (local.get $name_len)
                                   (local.get $path) (local.get $len)))
                  (then
                    (local.set $best_fd (local.get $fd))
                    (local.set $best_len (local.get $name_len))))))))
        (local.set $fd (i32.add (local.get $fd) (i32.const 1)))
        (br $preopen)))
    (if (i32.lt_s (local.get $best_fd) (i32.const 0)) (then (return (i32.const 1))))
    ;; The rest of the path, relative to that directory.
    (local.set $path (i32.add (local.get $path) (local.get $best_len)))
    (local.set $len (i32.sub (local.get $len) (local.get $best_len)))
    (block $relative
      (loop $slash
        (br_if $relative (i32.eqz (local.get $len)))
        (br_if $relative (i32.ne (i32.load8_u (local.get $path)) (i32.const 47)))
        (local.set $path (i32.add (local.get $path) (i32.const 1)))
        (local.set $len (i32.sub (local.get $len) (i32.const 1)))
        (br $slash)))
    (if (i32.eqz (local.get $len)) (then (return (i32.const 1))))
    ;; Follow symlinks, no create flags, the right to read (bit 1).
    (if (call $path_open (local.get $best_fd) (i32.const 1) (local.get $path) (local.get $len)
                         (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 24))
      (then (return (i32.const 1))))
    (local.set $file (i32.load (i32.const 24)))
    (block $eof
      (loop $chunk
        (i32.store (i32.const 32) (i32.const 32768))
        (i32.store (i32.const 36) (i32.const 32768))
        (if (call $fd_read (local.get $file) (i32.const 32) (i32.const 1) (i32.const 40))
          (then (drop (call $fd_close (local.get $file))) (return (i32.const 1))))
        (local.set $n (i32.load (i32.const 40)))
        (br_if $eof (i32.eqz (local.get $n)))
        (if (call $write (i32.const 1) (i32.const 32768) (local.get $n))
          (then (drop (call $fd_close (local.get $file))) (return (i32.const 1))))
        (br $chunk)))
    (drop (call $fd_close (local.get $file)))
    (i32.const 0))

  (func (export "_start")
    (local $argc i32) (local $i i32) (local $arg i32) (local $len i32) (local $status i32)
    (if (call $args_sizes_get (i32.const 16) (i32.const 20))
      (then (call $proc_exit (i32.const 1))))
    (local.set $argc (i32.load (i32.const 16)))
    (if (i32.or (i32.gt_u (local.get $argc) (i32.const 256))
                (i32.gt_u (i32.load (i32.const 20)) (i32.const 6144)))
      (then (call $proc_exit (i32.const 2))))
    (if (call $args_get (i32.const 1024) (i32.const 2048))
      (then (call $proc_exit (i32.const 1))))
    (local.set $i (i32.const 1))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $i) (local.get $argc)))
        (local.set $arg (i32.load (i32.add (i32.const 1024) (i32.shl (local.get $i) (i32.const 2)))))
        (local.set $len (call $strlen (local.get $arg)))
        (if (call $cat (local.get $arg) (local.get $len))
          (then
            (local.set $status (i32.const 1))
            (drop (call $write (i32.const 2) (i32.const 64) (i32.const 17)))
            (drop (call $write (i32.const 2) (local.get $arg) (local.get $len)))
            (drop (call $write (i32.const 2) (i32.const 96) (i32.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $each)))
    (if (local.get $status) (then (call $proc_exit (local.get $status))))))
