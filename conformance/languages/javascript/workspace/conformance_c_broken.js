// Throws on purpose: the executor should log it, skip it and load the rest (CODE-4).
console.log("conformance-loading-marker: c_broken");
throw new Error("deliberately broken workspace file of the conformance kit");
