package dev.lazypull.testing;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

/**
 * A tree with every inode type and the edge cases of the format (needs root and setcap/setfattr):
 * regular files of 0 bytes, one byte, exactly one chunk, one chunk + 1, identical files
 * (deduplicated), sparse files, one over 4 GiB (sparse), a directory spanning several blocks, names
 * of 255 bytes, a name that is not UTF-8, names that sort around "." ("!bang", "-dash"), 40 levels
 * of nesting, hard links across directories (of a regular file, a fifo, a symlink, char and block
 * devices and a socket), symlinks (short, long, dangling, a loop), char/block devices (one with a
 * minor over 255), a fifo, a socket, uid/gid over 65535, suid/sgid/sticky bits, nanosecond mtimes,
 * user./trusted./security. xattrs and a file capability.
 */
public final class SyntheticTree {
  private SyntheticTree() {}

  public static Path create(Path root, boolean withHugeFile)
      throws IOException, InterruptedException {
    Files.createDirectories(root);
    Random rnd = new Random(7);
    TestTrees.write(root.resolve("one-chunk.bin"), 1 << 20, rnd);
    TestTrees.write(root.resolve("one-chunk-plus-one.bin"), (1 << 20) + 1, rnd);
    TestTrees.write(root.resolve("odd.bin"), 3 * 4096 + 17, rnd);
    TestTrees.write(root.resolve("dup-a.bin"), 2 << 20, new Random(99));
    TestTrees.write(root.resolve("dup-b.bin"), 2 << 20, new Random(99));
    Files.writeString(root.resolve("one-byte"), "x");
    Files.createFile(root.resolve("empty"));
    Path many = Files.createDirectories(root.resolve("many"));
    for (int i = 0; i < 400; i++) {
      Files.writeString(
          many.resolve(String.format("entry-with-a-fairly-long-name-%04d.txt", i)), "n" + i);
    }
    try (ServerSocketChannel s = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
      s.bind(UnixDomainSocketAddress.of(root.resolve("socket")));
    }
    String huge =
        withHugeFile
            ? "truncate -s $(( (4 << 30) + (5 << 20) )) huge.bin\n"
                + "printf 'across-the-4GiB-line' | dd of=huge.bin bs=1 seek=$(( (4 << 30) - 10 )) conv=notrunc status=none\n"
                + "head -c 100000 /dev/urandom | dd of=huge.bin bs=1 seek=$(( (4 << 30) + (4 << 20) )) conv=notrunc status=none\n"
            : "";
    String name255 = "n".repeat(255);
    String sh =
        "set -euo pipefail\ncd '"
            + root
            + "'\n"
            + "truncate -s 10M sparse.bin\n"
            + "head -c 5000 /dev/urandom | dd of=sparse.bin conv=notrunc status=none\n"
            + "head -c 5000 /dev/urandom | dd of=sparse.bin bs=1 seek=$((5 << 20)) conv=notrunc status=none\n"
            + huge
            + "echo long > '"
            + name255
            + "'\n"
            + "echo bytes > $'latin1-\\xe9t\\xe9-\\xff'\n"
            + "touch '!bang' -- '-dash' Zed a\n"
            + "d=.; for i in $(seq 1 40); do d=$d/level$i; done; mkdir -p \"$d\"; echo deep > \"$d/leaf\"\n"
            + "mkdir -p links/sub; echo shared > links/orig; ln links/orig links/sub/hard1; ln links/orig hard2\n"
            + "ln -s one-byte sym; ln -s /does/not/exist dangling; ln -s loop-b loop-a; ln -s loop-a loop-b\n"
            + "ln -s "
            + "x".repeat(3000)
            + " long-symlink\n"
            + "mknod chr c 1 3; mknod blk b 7 200; mknod bigminor c 10 300; mkfifo fifo\n"
            // hard links of every inode type, across directories
            + "mkdir -p hardlinks/in; mkfifo hardlinks/fifo; ln hardlinks/fifo hardlinks/in/fifo2; ln hardlinks/fifo fifo3\n"
            + "ln -s ../one-byte hardlinks/sym; ln -P hardlinks/sym hardlinks/in/sym2\n"
            + "mknod hardlinks/chr c 1 5; ln hardlinks/chr hardlinks/in/chr2; mknod hardlinks/blk b 7 201\n"
            + "ln hardlinks/blk hardlinks/in/blk2; ln socket hardlinks/socket2\n"
            + "echo owned > owned; chown 70000:70001 owned\n"
            + "echo mid > mid-owner; chown 1000:1000 mid-owner\n"
            + "echo suid > suid; chmod 4755 suid; mkdir sticky; chmod 1777 sticky; mkdir sgid; chmod 2750 sgid\n"
            + "echo none > none; chmod 0000 none\n"
            + "echo x > xattrs; setfattr -n user.comment -v hello xattrs; setfattr -n trusted.t -v 0x00ff00 xattrs\n"
            + "setfattr -n security.test -v sec xattrs; setfattr -n user.dir -v d many\n"
            + "cp one-byte ping; setcap cap_net_raw+ep ping\n"
            + "find . -mindepth 1 ! -type l -exec touch -h -d @1600000000.123456789 {} +\n"
            + "touch -h -d @1700000000 sym; touch -d @1500000000.5 odd.bin\n"
            + "touch -d @1600000000.123456789 .\n";
    Requirements.run("bash", "-c", sh);
    return root;
  }
}
