import { assertEquals } from "@std/assert";
import { isDebianLike, parseOsRelease } from "../../../src/lib/host_system.ts";

Deno.test("host: os-release parsing and Debian-likeness", () => {
  const ubuntu = parseOsRelease(
    'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nNAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\n' +
      "VERSION_CODENAME=noble\n",
  );
  assertEquals(ubuntu, {
    id: "ubuntu",
    idLike: ["debian"],
    prettyName: "Ubuntu 24.04.1 LTS",
    versionCodename: "noble",
  });
  assertEquals(isDebianLike(ubuntu), true);
  const arch = parseOsRelease("NAME='Arch Linux'\nID=arch\n");
  assertEquals(arch.prettyName, "Arch Linux");
  assertEquals(isDebianLike(arch), false);
  assertEquals(isDebianLike(parseOsRelease('ID=pop\nID_LIKE="ubuntu debian"\n')), true);
});
