// Hand-made tar entries, for archives GNU tar would refuse to write:
// the hostile corpus of the unit and system tests.
/** One ustar header block, checksummed. */
export function header(name: string, type = "0", size = 0, link = ""): Buffer {
  const b = Buffer.alloc(512);
  b.write(name, 0, 100, "utf8");
  b.write("0000644\0", 100);
  b.write("0000000\0", 108);
  b.write("0000000\0", 116);
  b.write(`${size.toString(8).padStart(11, "0")}\0`, 124);
  b.write("00000000000\0", 136);
  b.write(type, 156);
  b.write(link, 157, 100, "utf8");
  b.write("ustar\0" + "00", 257, "latin1");
  b.write("        ", 148);
  let sum = 0;
  for (const c of b) sum += c;
  b.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
  return b;
}

export function entry(name: string, type = "0", data = "", link = ""): Buffer {
  const body = Buffer.from(data);
  const pad = Buffer.alloc((512 - (body.length % 512)) % 512);
  return Buffer.concat([header(name, type, body.length, link), body, pad]);
}

export function pax(records: Record<string, string>): Buffer {
  let text = "";
  for (const [k, v] of Object.entries(records)) {
    const rest = ` ${k}=${v}\n`;
    let len = Buffer.byteLength(rest) + 1;
    while (Buffer.byteLength(`${len}${rest}`) !== len) len++;
    text += `${len}${rest}`;
  }
  return entry("PaxHeaders/x", "x", text);
}
